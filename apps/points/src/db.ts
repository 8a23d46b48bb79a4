/** The points database, as Kysely sees it (see migrations.ts). */
import type { EntryKind } from './domain/ledger.js';

export interface LedgerRow {
  key: string;
  kind: EntryKind;
  user_id: string;
  order_id: string;
  /** bigint: PostgreSQL hands it back as a string, so reads go through dbInt. */
  delta: number;
  created_at: string;
}

export interface BalanceRow {
  user_id: string;
  /** Σ delta of the user's ledger entries. */
  points: number;
}

export interface PointsDb {
  ledger: LedgerRow;
  balances: BalanceRow;
}
