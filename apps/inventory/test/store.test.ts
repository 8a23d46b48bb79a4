/**
 * The shell over a real (in-memory) SQLite database: transactions, guarded updates, the CHECK
 * constraints, seeding and the sweeper. Cross-process concurrency is covered by the system test.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { HttpError, Store, createLogger } from '@concord/platform';
import { sql } from 'kysely';
import type { InventoryDb } from '../src/db.js';
import { migrations } from '../src/migrations.js';
import { Products } from '../src/products.js';
import { Reservations } from '../src/reservations.js';
import { seedOnce } from '../src/seeding.js';
import { Sweeper } from '../src/sweeper.js';

const log = createLogger({ service: 'inventory-test', instance: 't', version: 'v1' }, 'silent');
const T0 = Date.parse('2030-01-01T00:00:00Z');
const TTL = 60_000;

async function problemOf(p: Promise<unknown>): Promise<{ status: number; type: string; [k: string]: unknown }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof HttpError) return { ...err.problem, type: err.problem.type.replace('https://concord.dev/problems/', '') };
    throw err;
  }
  assert.fail('expected a problem');
}

describe('inventory store', () => {
  let store: Store<InventoryDb>;
  let products: Products;
  let reservations: Reservations;
  let n = 0;
  const rid = () => `r-${++n}`;

  const counters = async (id: string) => {
    const r = await store.db.selectFrom('products').select(['initial', 'available', 'reserved', 'sold']).where('id', '=', id).executeTakeFirstOrThrow();
    return { ...r };
  };

  before(async () => {
    store = await Store.open<InventoryDb>({ url: 'sqlite::memory:', log });
    await store.migrate(migrations);
    products = new Products(store);
    reservations = new Reservations(store);
  });
  after(() => store.close());
  beforeEach(async () => {
    await store.db.deleteFrom('reservation_items').execute();
    await store.db.deleteFrom('reservations').execute();
    await store.db.deleteFrom('products').execute();
    await products.create({ id: 'a', name: 'A', price: 100, stock: 10 }, T0);
    await products.create({ id: 'b', name: 'B', price: 200, stock: 3 }, T0);
  });

  test('migrations are applied once: a second run applies none', async () => {
    assert.equal(await store.migrate(migrations), 0);
  });

  test('the database itself refuses a negative counter or a unit that appears from nowhere', async () => {
    await assert.rejects(store.db.updateTable('products').set({ available: -1, reserved: 11 }).where('id', '=', 'a').execute(), /CHECK constraint/);
    await assert.rejects(store.db.updateTable('products').set({ available: 11 }).where('id', '=', 'a').execute(), /CHECK constraint/);
    assert.deepEqual(await counters('a'), { initial: 10, available: 10, reserved: 0, sold: 0 });
  });

  test('reserve takes every item or none: one item short leaves all counters untouched', async () => {
    const p = await problemOf(
      reservations.reserve(
        {
          reservationId: 'short',
          orderId: 'o',
          items: [
            { productId: 'a', quantity: 5 },
            { productId: 'b', quantity: 4 },
          ],
          ttlMs: TTL,
        },
        T0,
      ),
    );
    assert.deepEqual([p.status, p.type, p.productId, p.requested, p.available], [409, 'insufficient-stock', 'b', 4, 3]);
    assert.deepEqual(await counters('a'), { initial: 10, available: 10, reserved: 0, sold: 0 });
    assert.equal(await reservations.get('short'), null, 'nothing recorded');
    const u = await problemOf(reservations.reserve({ reservationId: 'unk', orderId: 'o', items: [{ productId: 'nope', quantity: 1 }], ttlMs: TTL }, T0));
    assert.deepEqual([u.status, u.type, u.productId], [404, 'unknown-product', 'nope']);
  });

  test('reserve → confirm → restock moves units available → reserved → sold → available, each once', async () => {
    const id = rid();
    const req = {
      reservationId: id,
      orderId: 'o1',
      items: [
        { productId: 'a', quantity: 2 },
        { productId: 'a', quantity: 1 },
      ],
      ttlMs: TTL,
    };
    const first = await reservations.reserve(req, T0);
    assert.equal(first.created, true);
    assert.deepEqual(first.reservation.items, [{ productId: 'a', quantity: 3 }], 'duplicates merged');
    assert.equal(first.reservation.expiresAt, new Date(T0 + TTL).toISOString());
    const again = await reservations.reserve(req, T0 + 1);
    assert.equal(again.created, false);
    assert.deepEqual(again.reservation, first.reservation);
    assert.deepEqual(await counters('a'), { initial: 10, available: 7, reserved: 3, sold: 0 });

    for (let i = 0; i < 2; i++) assert.equal((await reservations.command('confirm', id, T0 + 2)).status, 'CONFIRMED');
    assert.deepEqual(await counters('a'), { initial: 10, available: 7, reserved: 0, sold: 3 });
    // Confirmed is never lost to expiry.
    assert.equal((await reservations.command('expire', id, T0 + TTL * 2)).changed, false);

    for (let i = 0; i < 2; i++) assert.equal((await reservations.command('restock', id, T0 + 3)).status, 'RESTOCKED');
    assert.deepEqual(await counters('a'), { initial: 10, available: 10, reserved: 0, sold: 0 });
    assert.equal((await reservations.command('release', id, T0 + 4)).status, 'RESTOCKED', 'release after restock: already undone');
  });

  test('release gives units back once; a confirm after it is refused', async () => {
    const id = rid();
    await reservations.reserve({ reservationId: id, orderId: 'o', items: [{ productId: 'b', quantity: 3 }], ttlMs: TTL }, T0);
    assert.deepEqual(await counters('b'), { initial: 3, available: 0, reserved: 3, sold: 0 });
    for (let i = 0; i < 2; i++) assert.deepEqual(await reservations.command('release', id, T0), { reservationId: id, status: 'RELEASED', changed: i === 0 });
    assert.deepEqual(await counters('b'), { initial: 3, available: 3, reserved: 0, sold: 0 });
    const p = await problemOf(reservations.command('confirm', id, T0));
    assert.deepEqual([p.status, p.type, p.reservationId], [409, 'reservation-released', id]);
  });

  test('a replay with other items or another order id is refused, not silently answered', async () => {
    const id = rid();
    await reservations.reserve({ reservationId: id, orderId: 'o', items: [{ productId: 'a', quantity: 1 }], ttlMs: TTL }, T0);
    const p = await problemOf(reservations.reserve({ reservationId: id, orderId: 'o', items: [{ productId: 'a', quantity: 2 }], ttlMs: TTL }, T0));
    assert.deepEqual([p.status, p.type], [422, 'reservation-mismatch']);
    const q = await problemOf(reservations.reserve({ reservationId: id, orderId: 'other', items: [{ productId: 'a', quantity: 1 }], ttlMs: TTL }, T0));
    assert.equal(q.status, 422);
    assert.deepEqual(await counters('a'), { initial: 10, available: 9, reserved: 1, sold: 0 });
  });

  test('an overdue reservation is expired by the next command even before the sweeper runs', async () => {
    const id = rid();
    await reservations.reserve({ reservationId: id, orderId: 'o', items: [{ productId: 'a', quantity: 4 }], ttlMs: TTL }, T0);
    const p = await problemOf(reservations.command('confirm', id, T0 + TTL));
    assert.equal(p.type, 'reservation-released');
    assert.equal((await reservations.get(id))?.status, 'EXPIRED', 'the expiry was committed although the answer is an error');
    assert.deepEqual(await counters('a'), { initial: 10, available: 10, reserved: 0, sold: 0 });
  });

  test('the sweeper expires overdue reservations in bounded batches and leaves live ones', async () => {
    let now = T0;
    const ids = [rid(), rid(), rid()];
    for (const id of ids) await reservations.reserve({ reservationId: id, orderId: 'o', items: [{ productId: 'a', quantity: 1 }], ttlMs: TTL }, now);
    const live = rid();
    await reservations.reserve({ reservationId: live, orderId: 'o', items: [{ productId: 'a', quantity: 1 }], ttlMs: TTL * 10 }, now);
    now = T0 + TTL;
    const sweeper = new Sweeper({ reservations, log, intervalMs: 1000, batchSize: 2, now: () => now });
    assert.deepEqual(await sweeper.sweep(), { expired: 2, full: true });
    assert.deepEqual(await sweeper.sweep(), { expired: 1, full: false });
    assert.deepEqual(await sweeper.sweep(), { expired: 0, full: false });
    for (const id of ids) assert.equal((await reservations.get(id))?.status, 'EXPIRED');
    assert.equal((await reservations.get(live))?.status, 'RESERVED');
    assert.deepEqual(await counters('a'), { initial: 10, available: 9, reserved: 1, sold: 0 });
    await sweeper.stop();
  });

  test('sweeper errors are logged, never thrown', async () => {
    const broken = { overdue: async () => Promise.reject(new Error('disk on fire')) } as unknown as Reservations;
    const sweeper = new Sweeper({ reservations: broken, log, intervalMs: 1000, batchSize: 10 });
    assert.deepEqual(await sweeper.sweep(), { expired: 0, full: false });
  });

  test('admin stock additions grow initial and available, bounded per product', async () => {
    assert.deepEqual(await products.addStock('a', 5, T0), { id: 'a', name: 'A', price: 100, initial: 15, available: 15, reserved: 0, sold: 0 });
    assert.equal((await problemOf(products.addStock('nope', 5, T0))).status, 404);
    assert.equal((await problemOf(products.addStock('a', 1_000_000_000, T0))).type, 'stock-limit');
    assert.equal((await problemOf(products.create({ id: 'a', name: 'again', price: 1, stock: 1 }, T0))).type, 'product-exists');
  });

  test('paging by id returns every product once with a cursor that ends at null', async () => {
    for (const id of ['c', 'd', 'e']) await products.create({ id, name: id, price: 1, stock: 1 }, T0);
    const seen: string[] = [];
    let after: string | null = null;
    for (let pages = 0; pages < 10; pages++) {
      const page = await products.page(after, 2);
      seen.push(...page.items.map((p) => p.id));
      if (page.nextCursor === null) break;
      after = Buffer.from(page.nextCursor, 'base64url').toString();
    }
    assert.deepEqual(seen, ['a', 'b', 'c', 'd', 'e']);
  });

  test('seeding happens exactly once', async () => {
    await store.db.deleteFrom('inventory_meta').execute();
    assert.equal(await seedOnce(store, 25, T0), 25);
    assert.equal(await seedOnce(store, 25, T0), 0);
    const { count } = await store.db.selectFrom('products').select(sql<number>`count(*)`.as('count')).where('id', 'like', 'p-%').executeTakeFirstOrThrow();
    assert.equal(Number(count), 25);
  });
});
