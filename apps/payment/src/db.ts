/** The payment database, as Kysely sees it (see migrations.ts). Money is integer cents. */
import type { ChargeStatus } from './domain/charges.js';

/** bigint columns: PostgreSQL hands them back as strings, so reads go through dbInt. */
type Cents = number;

export interface WalletRow {
  user_id: string;
  balance: Cents;
  /** Every cent ever put into this wallet (the initial 10000.00). */
  deposited: Cents;
  created_at: string;
}

export interface ChargeRow {
  id: string;
  /** null for a VOID tombstone. */
  user_id: string | null;
  order_id: string | null;
  amount: Cents;
  refunded: Cents;
  status: ChargeStatus;
  created_at: string;
}

export interface RefundRow {
  id: string;
  charge_id: string;
  amount: Cents;
  /** The amount the request asked for; null when it asked for "the rest". Replays compare it. */
  requested: Cents | null;
  created_at: string;
}

export interface PaymentDb {
  wallets: WalletRow;
  charges: ChargeRow;
  refunds: RefundRow;
}
