/**
 * The payment shell: reads what is stored, asks the pure core (domain/charges.ts) what to do,
 * and applies the answer in one write transaction. No network call happens inside one.
 */
import { invariant } from '@concord/core';
import { type Faults, HttpError, type Store, dbInt, keyedTx, prepared } from '@concord/platform';
import { type Kysely, sql } from 'kysely';
import type { ChargeRow, PaymentDb, RefundRow, WalletRow } from './db.js';
import {
  type Charge,
  type ChargeRequest,
  type PaymentsSummary,
  type Refund,
  type RefundRequest,
  type Refusal,
  decideCharge,
  decideRefund,
} from './domain/charges.js';
import { INITIAL_BALANCE_CENTS } from './domain/limits.js';

export interface WalletView {
  userId: string;
  balance: number;
}

/** What charge and refund routes answer. `balance` is the owner's wallet; null for a VOID tombstone. */
export interface ChargeView {
  chargeId: string;
  status: Charge['status'];
  amount: number;
  refunded: number;
  balance: number | null;
}

export interface ChargeDetail {
  chargeId: string;
  userId: string | null;
  orderId: string | null;
  status: Charge['status'];
  amount: number;
  refunded: number;
  createdAt: string;
}

type Db = Kysely<PaymentDb>;

export class Payments {
  constructor(
    private readonly store: Store<PaymentDb>,
    private readonly faults?: Faults,
  ) {}

  /** The same service over another store (one bound to a batch transaction). */
  withStore(store: Store<PaymentDb>): Payments {
    return new Payments(store, this.faults);
  }

  /** Creates the wallet with the initial balance unless it exists. */
  async ensureWallet(userId: string): Promise<{ wallet: WalletView; created: boolean }> {
    return keyedTx(this.store, async (trx) => {
      const existing = await findWallet(trx, userId);
      if (existing) return { wallet: walletView(existing), created: false };
      return { wallet: walletView(await insertWallet(trx, userId)), created: true };
    });
  }

  async findWallet(userId: string): Promise<WalletView | undefined> {
    const row = await findWallet(this.store.db, userId);
    return row && walletView(row);
  }

  /** The wallet of an authenticated user: read, created on first sight. */
  async walletOf(userId: string): Promise<WalletView> {
    return (await this.findWallet(userId)) ?? (await this.ensureWallet(userId)).wallet;
  }

  async charge(req: ChargeRequest): Promise<{ view: ChargeView; created: boolean }> {
    const result = await keyedTx(this.store, async (trx) => {
      const stored = await findCharge(trx, req.chargeId);
      const wallet = await findWallet(trx, req.userId);
      const decision = decideCharge(stored, wallet ? dbInt(wallet.balance, 'wallets.balance') : INITIAL_BALANCE_CENTS, req);
      switch (decision.kind) {
        case 'refuse':
          throw refusalError(decision.refusal);
        case 'replay':
          return { view: await chargeView(trx, req.chargeId), created: false };
        case 'apply': {
          if (!wallet) await insertWallet(trx, req.userId);
          if ((await debit.affected(trx, { userId: req.userId, amount: req.amount })) !== 1) {
            // Only reachable on engines that do not serialize writers: another charge drained
            // the wallet between our read and this update.
            const now = await findWallet(trx, req.userId);
            throw refusalError({ reason: 'insufficient-funds', balance: now ? dbInt(now.balance, 'wallets.balance') : 0, amount: req.amount });
          }
          await insertCharge.run(trx, { id: req.chargeId, userId: req.userId, orderId: req.orderId, amount: req.amount, now: nowIso() });
          this.faults?.point('payment:charge:before-commit');
          return { view: await chargeView(trx, req.chargeId), created: true };
        }
      }
    });
    this.faults?.point('payment:charge:after-commit');
    return result;
  }

  async refund(req: RefundRequest): Promise<ChargeView> {
    const view = await keyedTx(this.store, async (trx) => {
      const prior = await trx.selectFrom('refunds').selectAll().where('id', '=', req.refundId).executeTakeFirst();
      const charge = await findCharge(trx, req.chargeId);
      const decision = decideRefund(charge, prior && toRefund(prior), req);
      switch (decision.kind) {
        case 'refuse':
          throw refusalError(decision.refusal);
        case 'replay':
          return chargeView(trx, req.chargeId);
        case 'tombstone':
          await trx
            .insertInto('charges')
            .values({ id: req.chargeId, user_id: null, order_id: null, amount: 0, refunded: 0, status: 'VOID', created_at: nowIso() })
            .execute();
          await insertRefund(trx, req, 0);
          return chargeView(trx, req.chargeId);
        case 'apply': {
          invariant(charge, 'a refund is applied to a stored charge');
          if (decision.amount > 0) {
            invariant(charge.userId !== null, `charge ${charge.id} has money but no owner`);
            const amount = decision.amount;
            const credited = await trx
              .updateTable('charges')
              .set((eb) => ({ refunded: eb('refunded', '+', amount) }))
              .where('id', '=', charge.id)
              .where((eb) => eb(eb('refunded', '+', amount), '<=', eb.ref('amount')))
              .executeTakeFirst();
            if (Number(credited.numUpdatedRows) !== 1) {
              // Only reachable on engines that do not serialize writers: a concurrent refund won.
              const now = await findCharge(trx, charge.id);
              throw refusalError({ reason: 'refund-exceeds-charge', chargeId: charge.id, amount, refundable: now ? now.amount - now.refunded : 0 });
            }
            const wallet = await trx
              .updateTable('wallets')
              .set((eb) => ({ balance: eb('balance', '+', amount) }))
              .where('user_id', '=', charge.userId)
              .executeTakeFirst();
            invariant(Number(wallet.numUpdatedRows) === 1, `charge ${charge.id} belongs to ${charge.userId}, who has no wallet`);
          }
          await insertRefund(trx, req, decision.amount);
          this.faults?.point('payment:refund:before-commit');
          return chargeView(trx, req.chargeId);
        }
      }
    });
    this.faults?.point('payment:refund:after-commit');
    return view;
  }

  async findCharge(chargeId: string): Promise<ChargeDetail | undefined> {
    const row = await this.store.db.selectFrom('charges').selectAll().where('id', '=', chargeId).executeTakeFirst();
    if (!row) return undefined;
    const c = toCharge(row);
    return { chargeId: c.id, userId: c.userId, orderId: c.orderId, status: c.status, amount: c.amount, refunded: c.refunded, createdAt: row.created_at };
  }

  /** One statement, so the totals come from one snapshot and always balance. */
  async summary(): Promise<PaymentsSummary> {
    const r = await sql<Record<string, unknown>>`
      select
        (select count(*) from wallets) as wallet_count,
        (select coalesce(sum(balance), 0) from wallets) as total_balance,
        (select coalesce(sum(deposited), 0) from wallets) as total_deposited,
        (select coalesce(sum(amount), 0) from charges where status = 'CHARGED') as charged,
        (select coalesce(sum(amount), 0) from refunds) as refunded
    `.execute(this.store.db);
    const row = r.rows[0];
    invariant(row, 'the summary query returns one row');
    return {
      wallets: {
        count: dbInt(row.wallet_count, 'wallet count'),
        totalBalance: dbInt(row.total_balance, 'total balance'),
        totalDeposited: dbInt(row.total_deposited, 'total deposited'),
      },
      charged: dbInt(row.charged, 'charged'),
      refunded: dbInt(row.refunded, 'refunded'),
    };
  }
}

function nowIso(): string {
  return new Date().toISOString();
}

// The charge path's statements, prepared (built and compiled once; see platform's store/prepared.ts).
const walletOf = prepared<{ userId: string }, WalletRow>(['userId'], (db: Db, p) => db.selectFrom('wallets').selectAll().where('user_id', '=', p.userId));
const chargeById = prepared<{ id: string }, ChargeRow>(['id'], (db: Db, p) => db.selectFrom('charges').selectAll().where('id', '=', p.id));
const debit = prepared<{ userId: string; amount: number }>(['userId', 'amount'], (db: Db, p) =>
  db
    .updateTable('wallets')
    .set((eb) => ({ balance: eb('balance', '-', p.amount) }))
    .where('user_id', '=', p.userId)
    .where('balance', '>=', p.amount),
);
const insertCharge = prepared<{ id: string; userId: string; orderId: string; amount: number; now: string }>(['id', 'userId', 'orderId', 'amount', 'now'], (db: Db, p) =>
  db.insertInto('charges').values({ id: p.id, user_id: p.userId, order_id: p.orderId, amount: p.amount, refunded: 0, status: 'CHARGED', created_at: p.now }),
);

async function findWallet(db: Db, userId: string): Promise<WalletRow | undefined> {
  return walletOf.first(db, { userId });
}

async function insertWallet(trx: Db, userId: string): Promise<WalletRow> {
  const row: WalletRow = { user_id: userId, balance: INITIAL_BALANCE_CENTS, deposited: INITIAL_BALANCE_CENTS, created_at: nowIso() };
  await trx.insertInto('wallets').values(row).execute();
  return row;
}

async function findCharge(db: Db, chargeId: string): Promise<Charge | undefined> {
  const row = await chargeById.first(db, { id: chargeId });
  return row && toCharge(row);
}

async function insertRefund(trx: Db, req: RefundRequest, amount: number): Promise<void> {
  await trx
    .insertInto('refunds')
    .values({ id: req.refundId, charge_id: req.chargeId, amount, requested: req.amount ?? null, created_at: nowIso() })
    .execute();
}

/** The charge as it stands now, with its owner's balance. */
async function chargeView(db: Db, chargeId: string): Promise<ChargeView> {
  const c = await findCharge(db, chargeId);
  invariant(c, `charge ${chargeId} was just read or written`);
  let balance: number | null = null;
  if (c.userId !== null) {
    const w = await findWallet(db, c.userId);
    invariant(w, `charge ${chargeId} belongs to ${c.userId}, who has no wallet`);
    balance = dbInt(w.balance, 'wallets.balance');
  }
  return { chargeId: c.id, status: c.status, amount: c.amount, refunded: c.refunded, balance };
}

function walletView(row: WalletRow): WalletView {
  return { userId: row.user_id, balance: dbInt(row.balance, 'wallets.balance') };
}

function toCharge(row: ChargeRow): Charge {
  invariant(row.status === 'CHARGED' || row.status === 'VOID', `charge ${row.id} has status ${row.status}`);
  return {
    id: row.id,
    userId: row.user_id,
    orderId: row.order_id,
    amount: dbInt(row.amount, 'charges.amount'),
    refunded: dbInt(row.refunded, 'charges.refunded'),
    status: row.status,
  };
}

function toRefund(row: RefundRow): Refund {
  return {
    id: row.id,
    chargeId: row.charge_id,
    amount: dbInt(row.amount, 'refunds.amount'),
    requested: row.requested === null ? null : dbInt(row.requested, 'refunds.requested'),
  };
}

/** A business refusal on the wire. Thrown inside the transaction, so nothing is written. */
export function refusalError(r: Refusal): HttpError {
  switch (r.reason) {
    case 'charge-voided':
      return new HttpError(409, 'charge-voided', `charge ${r.chargeId} was refunded before it was made; it can no longer be charged`, { chargeId: r.chargeId });
    case 'charge-mismatch':
      return new HttpError(409, 'charge-mismatch', `charge ${r.chargeId} exists with a different ${r.fields.join(', ')}`, {
        chargeId: r.chargeId,
        fields: r.fields,
      });
    case 'insufficient-funds':
      return new HttpError(409, 'insufficient-funds', `the wallet holds ${r.balance} cents, the charge needs ${r.amount}`, {
        balance: r.balance,
        amount: r.amount,
      });
    case 'key-mismatch':
      return new HttpError(409, 'key-mismatch', `refund ${r.refundId} was made with a different ${r.fields.join(', ')}`, {
        refundId: r.refundId,
        fields: r.fields,
      });
    case 'refund-exceeds-charge':
      return new HttpError(409, 'refund-exceeds-charge', `charge ${r.chargeId} has ${r.refundable} cents left to refund, not ${r.amount}`, {
        chargeId: r.chargeId,
        amount: r.amount,
        refundable: r.refundable,
      });
  }
}
