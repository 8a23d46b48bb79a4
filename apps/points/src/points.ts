/**
 * The points shell: reads the ledger, asks the pure core (domain/ledger.ts) what to do, and
 * applies the answer in one write transaction: the ledger entry and the balance move together.
 */
import { invariant } from '@concord/core';
import { type Faults, HttpError, type Store, dbInt, keyedTx, prepared } from '@concord/platform';
import { type Kysely, sql } from 'kysely';
import type { LedgerRow, PointsDb } from './db.js';
import type { EntryKind } from './domain/ledger.js';
import { type Entry, type EntryRequest, decideEntry } from './domain/ledger.js';

export interface EntryView {
  key: string;
  userId: string;
  /** The user's balance after the entry. */
  points: number;
}

export interface BalanceView {
  userId: string;
  points: number;
}

type Db = Kysely<PointsDb>;

// The entry path's statements, prepared (built and compiled once; see platform's store/prepared.ts).
const entryByKey = prepared<{ key: string }, LedgerRow>(['key'], (db: Db, p) => db.selectFrom('ledger').selectAll().where('key', '=', p.key));
const insertEntry = prepared<{ key: string; kind: EntryKind; userId: string; orderId: string; delta: number; now: string }>(
  ['key', 'kind', 'userId', 'orderId', 'delta', 'now'],
  (db: Db, p) => db.insertInto('ledger').values({ key: p.key, kind: p.kind, user_id: p.userId, order_id: p.orderId, delta: p.delta, created_at: p.now }),
);
const pointsOf = prepared<{ userId: string }, { points: number }>(['userId'], (db: Db, p) => db.selectFrom('balances').select('points').where('user_id', '=', p.userId));
const addPoints = prepared<{ userId: string; delta: number }>(['userId', 'delta'], (db: Db, p) =>
  db
    .updateTable('balances')
    .set((eb) => ({ points: eb('points', '+', p.delta) }))
    .where('user_id', '=', p.userId),
);

export class Points {
  constructor(
    private readonly store: Store<PointsDb>,
    private readonly faults?: Faults,
  ) {}

  /** The same service over another store (one bound to a batch transaction). */
  withStore(store: Store<PointsDb>): Points {
    return new Points(store, this.faults);
  }

  /** Applies an award or a revoke once by its key; `created` is false for a replay. */
  async record(req: EntryRequest): Promise<{ view: EntryView; created: boolean }> {
    const result = await keyedTx(this.store, async (trx) => {
      const prior = await entryByKey.first(trx, { key: req.key });
      const decision = decideEntry(prior && toEntry(prior), req);
      switch (decision.kind) {
        case 'refuse': {
          const { key, fields } = decision.refusal;
          throw new HttpError(409, 'key-mismatch', `entry ${key} was recorded with a different ${fields.join(', ')}`, { key, fields });
        }
        case 'replay':
          return { view: { key: req.key, userId: req.userId, points: await balanceOf(trx, req.userId) }, created: false };
        case 'apply': {
          await insertEntry.run(trx, { key: req.key, kind: req.kind, userId: req.userId, orderId: req.orderId, delta: decision.delta, now: new Date().toISOString() });
          await addToBalance(trx, req.userId, decision.delta);
          this.faults?.point('points:entry:before-commit');
          return { view: { key: req.key, userId: req.userId, points: await balanceOf(trx, req.userId) }, created: true };
        }
      }
    });
    this.faults?.point('points:entry:after-commit');
    return result;
  }

  /** 0 for a user without entries. */
  async balance(userId: string): Promise<BalanceView> {
    return { userId, points: await balanceOf(this.store.db, userId) };
  }

  async totalPoints(): Promise<number> {
    const r = await sql<{ total: unknown }>`select coalesce(sum(points), 0) as total from balances`.execute(this.store.db);
    const row = r.rows[0];
    invariant(row, 'a sum returns one row');
    return dbInt(row.total, 'total points');
  }
}

async function balanceOf(db: Db, userId: string): Promise<number> {
  const row = await pointsOf.first(db, { userId });
  return row ? dbInt(row.points, 'balances.points') : 0;
}

async function addToBalance(trx: Db, userId: string, delta: number): Promise<void> {
  // A first entry creates the row; a concurrent first entry on an engine that does not serialize
  // writers makes this insert fail with a unique violation, and keyedTx runs the whole thing again.
  if ((await addPoints.affected(trx, { userId, delta })) === 0) await trx.insertInto('balances').values({ user_id: userId, points: delta }).execute();
}

function toEntry(row: LedgerRow): Entry {
  invariant(row.kind === 'AWARD' || row.kind === 'REVOKE', `ledger entry ${row.key} has kind ${row.kind}`);
  return { key: row.key, kind: row.kind, userId: row.user_id, orderId: row.order_id, delta: dbInt(row.delta, 'ledger.delta') };
}
