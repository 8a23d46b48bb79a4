/**
 * Reservations: the shell around the state machine of domain/reservation.ts. Each command is
 * one write transaction: read what is stored, ask the core for a plan, apply its transitions
 * (status change guarded by the expected old status, then one guarded UPDATE per item).
 *
 * On SQLite the transaction holds the write lock from its first statement, so nothing changes
 * under it. On PostgreSQL/MySQL (read committed) a concurrent writer can: the guards then touch
 * no row, the attempt is rolled back as a lost race and run again on fresh data.
 */
import { InvariantError, invariant } from '@concord/core';
import { HttpError, type Store, isUniqueViolation, prepared, preparedList } from '@concord/platform';
import type { Kysely } from 'kysely';
import type { InventoryDb, ReservationRow } from './db.js';
import { type Item, normalizeItems, sameItems, stockProblem } from './domain/items.js';
import { type Command, type Move, type ReservationStatus, type Stored, type Transition, isStatus, plan } from './domain/reservation.js';

export interface ReservationView {
  reservationId: string;
  /** null for a tombstone (released before any reserve arrived). */
  orderId: string | null;
  status: ReservationStatus;
  /** ISO time; null for a tombstone. */
  expiresAt: string | null;
  items: Item[];
  createdAt: string;
  updatedAt: string;
}

export interface ReserveRequest {
  reservationId: string;
  orderId: string;
  items: Item[];
  ttlMs: number;
}

/** What a status-changing command did. */
export interface CommandResult {
  reservationId: string;
  status: ReservationStatus;
  /** False when it was a repeat (or, for the sweeper, nothing was due). */
  changed: boolean;
}

const MAX_TX_ATTEMPTS = 5;

/** A guarded write touched no row: someone else committed first. The attempt is retried. */
class LostRace extends HttpError {
  constructor(what: string) {
    super(503, 'contention', `${what} changed concurrently; retry the request`, {}, { 'retry-after': '1' });
  }
}

type Db = Kysely<InventoryDb>;

const UPDATES: Record<Move, { dec: 'available' | 'reserved' | 'sold'; inc: 'available' | 'reserved' | 'sold' }> = {
  'available->reserved': { dec: 'available', inc: 'reserved' },
  'reserved->sold': { dec: 'reserved', inc: 'sold' },
  'reserved->available': { dec: 'reserved', inc: 'available' },
  'sold->available': { dec: 'sold', inc: 'available' },
};

// The hot statements, prepared (built and compiled once; see platform's store/prepared.ts).
const byId = prepared<{ id: string }, ReservationRow>(['id'], (db: Db, p) => db.selectFrom('reservations').selectAll().where('id', '=', p.id));
const itemsById = prepared<{ id: string }, { product_id: string; quantity: number }>(['id'], (db: Db, p) =>
  db.selectFrom('reservation_items').select(['product_id', 'quantity']).where('reservation_id', '=', p.id).orderBy('product_id'),
);
const insertReservation = prepared<{ id: string; orderId: string | null; status: ReservationStatus; expiresAtMs: number | null; now: string }>(
  ['id', 'orderId', 'status', 'expiresAtMs', 'now'],
  (db: Db, p) => db.insertInto('reservations').values({ id: p.id, order_id: p.orderId, status: p.status, expires_at_ms: p.expiresAtMs, created_at: p.now, updated_at: p.now }),
);
const setStatus = prepared<{ id: string; from: ReservationStatus; to: ReservationStatus; now: string }>(['id', 'from', 'to', 'now'], (db: Db, p) =>
  db.updateTable('reservations').set({ status: p.to, updated_at: p.now }).where('id', '=', p.id).where('status', '=', p.from),
);
// Shaped by a reservation's number of lines: one prepared statement per count (preparedList).
const availableOf = preparedList<{ productId: string }, { id: string; available: number }>(['productId'], (db: Db, items) =>
  db
    .selectFrom('products')
    .select(['id', 'available'])
    .where(
      'id',
      'in',
      items.map((i) => i.productId),
    ),
);
const insertItems = preparedList<{ id: string; productId: string; quantity: number }>(['id', 'productId', 'quantity'], (db: Db, items) =>
  db.insertInto('reservation_items').values(items.map((it) => ({ reservation_id: it.id, product_id: it.productId, quantity: it.quantity }))),
);
/** One guarded UPDATE per move (the columns differ by move, so one prepared statement each). */
const moves = Object.fromEntries(
  (Object.keys(UPDATES) as Move[]).map((move) => {
    const { dec, inc } = UPDATES[move];
    return [
      move,
      prepared<{ productId: string; quantity: number; now: string }>(['productId', 'quantity', 'now'], (db: Db, p) =>
        db
          .updateTable('products')
          .set((eb) => ({ [dec]: eb(dec, '-', p.quantity), [inc]: eb(inc, '+', p.quantity), updated_at: p.now }))
          .where('id', '=', p.productId)
          .where(dec, '>=', p.quantity),
      ),
    ];
  }),
) as Record<Move, ReturnType<typeof prepared<{ productId: string; quantity: number; now: string }>>>;

function storedOf(row: ReservationRow): Stored & { orderId: string | null } {
  invariant(isStatus(row.status), `reservation ${row.id} has an unknown status ${row.status}`);
  return { status: row.status, expiresAtMs: row.expires_at_ms === null ? null : Number(row.expires_at_ms), orderId: row.order_id };
}

async function retrying<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const race = err instanceof LostRace || isUniqueViolation(err);
      if (!race || attempt >= MAX_TX_ATTEMPTS) throw err;
    }
  }
}

export class Reservations {
  constructor(private readonly store: Store<InventoryDb>) {}

  /**
   * Reserves every item or none. A new id answers `created: true`; a replay of a stored id
   * answers what is stored. Throws the problem to answer otherwise.
   */
  async reserve(req: ReserveRequest, nowMs: number): Promise<{ created: boolean; reservation: ReservationView }> {
    const id = req.reservationId;
    const items = normalizeItems(req.items);
    const result = await retrying(() =>
      this.store.tx(async (trx) => {
        const row = await byId.first(trx, { id });
        const stored = row ? storedOf(row) : null;
        const p = plan('reserve', id, stored, nowMs);
        // The units the transitions move: the request's for a new reservation, else the stored ones.
        const moved = stored === null ? items : await this.itemsOf(trx, id);
        if (stored === null) {
          const rows = items.length > 0 ? await availableOf.all(trx, items) : [];
          const problem = stockProblem(items, new Map(rows.map((r) => [r.id, r.available])));
          if (problem?.kind === 'unknown-product') {
            return new HttpError(404, 'unknown-product', `no product ${problem.productId}`, { productId: problem.productId });
          }
          if (problem) {
            const { productId, requested, available } = problem;
            return new HttpError(409, 'insufficient-stock', `product ${productId}: ${requested} requested, ${available} available`, {
              productId,
              requested,
              available,
            });
          }
        } else if (p.outcome.ok && (stored.orderId !== req.orderId || !sameItems(moved, items))) {
          return new HttpError(422, 'reservation-mismatch', `reservation ${id} exists with a different order id or items; a replay must repeat the request`, {
            reservationId: id,
          });
        }
        await this.apply(trx, id, p.transitions, moved, { orderId: req.orderId, expiresAtMs: nowMs + req.ttlMs }, nowMs);
        if (!p.outcome.ok) return this.refusal(id, p.outcome);
        return { created: p.outcome.created, reservation: (await this.view(trx, id)) as ReservationView };
      }),
    );
    if (result instanceof HttpError) throw result;
    return result;
  }

  /** confirm, release, restock, or the sweeper's expire. Throws the problem to answer when refused. */
  async command(cmd: Exclude<Command, 'reserve'>, id: string, nowMs: number): Promise<CommandResult> {
    const result = await retrying(() =>
      this.store.tx(async (trx) => {
        const row = await byId.first(trx, { id });
        const p = plan(cmd, id, row ? storedOf(row) : null, nowMs);
        const items = p.transitions.some((t) => t.move !== null && t.from !== null) ? await this.itemsOf(trx, id) : [];
        await this.apply(trx, id, p.transitions, items, { orderId: null, expiresAtMs: null }, nowMs);
        if (!p.outcome.ok) return this.refusal(id, p.outcome);
        return { reservationId: id, status: p.outcome.status, changed: p.transitions.length > 0 };
      }),
    );
    if (result instanceof HttpError) throw result;
    return result;
  }

  async get(id: string): Promise<ReservationView | null> {
    return this.view(this.store.db, id);
  }

  /** Ids of RESERVED reservations past their deadline, oldest deadline first. */
  async overdue(nowMs: number, limit: number): Promise<string[]> {
    const rows = await this.store.db
      .selectFrom('reservations')
      .select('id')
      .where('status', '=', 'RESERVED')
      .where('expires_at_ms', '<=', nowMs)
      .orderBy('expires_at_ms')
      .limit(limit)
      .execute();
    return rows.map((r) => r.id);
  }

  private refusal(id: string, o: Extract<ReturnType<typeof plan>['outcome'], { ok: false }>): HttpError {
    return new HttpError(o.httpStatus, o.slug, o.detail, { reservationId: id });
  }

  private async itemsOf(db: Db, id: string): Promise<Item[]> {
    const rows = await itemsById.all(db, { id });
    return rows.map((r) => ({ productId: r.product_id, quantity: r.quantity }));
  }

  private async view(db: Db, id: string): Promise<ReservationView | null> {
    const row = await byId.first(db, { id });
    if (!row) return null;
    const s = storedOf(row);
    return {
      reservationId: row.id,
      orderId: row.order_id,
      status: s.status,
      expiresAt: s.expiresAtMs === null ? null : new Date(s.expiresAtMs).toISOString(),
      items: await this.itemsOf(db, id),
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }

  /** Applies a plan's transitions; `items` are the units each move concerns (sorted by product id). */
  private async apply(
    trx: Db,
    id: string,
    transitions: readonly Transition[],
    items: readonly Item[],
    create: { orderId: string | null; expiresAtMs: number | null },
    nowMs: number,
  ): Promise<void> {
    const now = new Date(nowMs).toISOString();
    for (const t of transitions) {
      if (t.from === null) {
        const tombstone = t.move === null;
        await insertReservation.run(trx, { id, orderId: tombstone ? null : create.orderId, status: t.to, expiresAtMs: tombstone ? null : create.expiresAtMs, now });
        if (!tombstone && items.length > 0) {
          await insertItems.run(
            trx,
            items.map((it) => ({ id, productId: it.productId, quantity: it.quantity })),
          );
        }
      } else {
        if ((await setStatus.affected(trx, { id, from: t.from, to: t.to, now })) !== 1) throw new LostRace(`reservation ${id}`);
      }
      if (t.move !== null) for (const it of items) await this.moveUnits(trx, it, t.move, now);
    }
  }

  /** One guarded UPDATE: the source counter never goes below zero. */
  private async moveUnits(trx: Db, it: Item, move: Move, now: string): Promise<void> {
    const { dec } = UPDATES[move];
    if ((await moves[move].affected(trx, { productId: it.productId, quantity: it.quantity, now })) === 1) return;
    // Taking stock can lose a race (another order took it first): try again on fresh data. Any
    // other move lacking its units means the counters disagree with the reservations.
    if (move === 'available->reserved') throw new LostRace(`stock of ${it.productId}`);
    throw new InvariantError(`product ${it.productId} has fewer than ${it.quantity} ${dec} units for a ${move} move`);
  }
}
