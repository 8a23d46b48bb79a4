/** Prepared queries on a real SQLite store: values bound by name, compiled once, misuse refused. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Kysely, sql } from 'kysely';
import { MAX_PREPARED_LIST_ITEMS, prepared, preparedList } from '../src/store/prepared.js';
import type { Store } from '../src/store/store.js';
import { openTempSqliteStore } from './sqlite-store.js';

interface Db {
  stock: { id: string; available: number; reserved: number; note: string | null };
}

describe('prepared queries', () => {
  let store: Store<Db>;
  let close = async () => {};

  before(async () => {
    ({ store, close } = await openTempSqliteStore<Db>('prepared', [
      {
        version: 1,
        name: 'stock',
        up: (db) => db.schema.createTable('stock').addColumn('id', 'text', (c) => c.primaryKey()).addColumn('available', 'integer').addColumn('reserved', 'integer').addColumn('note', 'text').execute(),
      },
    ]));
  });
  after(() => close());

  test('values are bound by name: in the builder order, used twice, beside constants; compiled once', async () => {
    let builds = 0;
    const insert = prepared<{ id: string; n: number }>(['id', 'n'], (db: Kysely<Db>, p) => {
      builds++;
      return db.insertInto('stock').values({ id: p.id, available: p.n, reserved: 0, note: 'seeded' });
    });
    // `move` binds quantity twice and the id last, in the opposite order of its declaration.
    const move = prepared<{ id: string; quantity: number }>(['id', 'quantity'], (db: Kysely<Db>, p) => {
      builds++;
      return db
        .updateTable('stock')
        .set((eb) => ({ available: eb('available', '-', p.quantity), reserved: eb('reserved', '+', p.quantity) }))
        .where('id', '=', p.id)
        .where('available', '>=', p.quantity);
    });
    const byId = prepared<{ id: string }, Db['stock']>(['id'], (db: Kysely<Db>, p) => {
      builds++;
      return db.selectFrom('stock').selectAll().where('id', '=', p.id);
    });
    for (const [id, n] of [['a', 5], ['b', 7]] as const) await insert.run(store.db, { id, n });
    assert.equal(await move.affected(store.db, { id: 'a', quantity: 3 }), 1);
    assert.equal(await move.affected(store.db, { id: 'a', quantity: 3 }), 0, 'the guard holds: 2 left, 3 asked');
    await store.tx(async (trx) => assert.equal(await move.affected(trx, { id: 'b', quantity: 7 }), 1));
    assert.deepEqual(await byId.first(store.db, { id: 'a' }), { id: 'a', available: 2, reserved: 3, note: 'seeded' });
    assert.deepEqual(await byId.first(store.db, { id: 'b' }), { id: 'b', available: 0, reserved: 7, note: 'seeded' });
    assert.equal(await byId.first(store.db, { id: 'zz' }), undefined);
    assert.deepEqual(await byId.all(store.db, { id: 'b' }), [{ id: 'b', available: 0, reserved: 7, note: 'seeded' }]);
    assert.equal(builds, 3, 'each query was built and compiled once, whatever the number of runs and connections');
  });

  test('a parameter written into the SQL text instead of bound stops the first use', async () => {
    const bad = prepared<{ column: string }>(['column'], (db: Kysely<Db>, p) => db.selectFrom('stock').select(sql.raw<string>(p.column).as('x')));
    await assert.rejects(bad.all(store.db, { column: 'id' }), /written into the SQL text/);
  });

  test('a list-shaped query is prepared once per count, binds every item in order, builds long lists each time and refuses an empty one', async () => {
    const counts: number[] = [];
    const insertMany = preparedList<{ id: string; n: number }>(['id', 'n'], (db: Kysely<Db>, items) => {
      counts.push(items.length);
      return db.insertInto('stock').values(items.map((it) => ({ id: it.id, available: it.n, reserved: 0, note: null })));
    });
    const byIds = preparedList<{ id: string }, { id: string; available: number }>(['id'], (db: Kysely<Db>, items) => {
      counts.push(-items.length);
      return db
        .selectFrom('stock')
        .select(['id', 'available'])
        .where(
          'id',
          'in',
          items.map((i) => i.id),
        )
        .orderBy('id');
    });
    await insertMany.run(store.db, [{ id: 'l1', n: 1 }, { id: 'l2', n: 2 }]);
    await insertMany.run(store.db, [{ id: 'l3', n: 3 }, { id: 'l4', n: 4 }]);
    await insertMany.run(store.db, [{ id: 'l5', n: 5 }]);
    assert.deepEqual(await byIds.all(store.db, [{ id: 'l4' }, { id: 'l1' }, { id: 'nope' }]), [{ id: 'l1', available: 1 }, { id: 'l4', available: 4 }]);
    assert.deepEqual(await byIds.all(store.db, [{ id: 'l2' }, { id: 'l5' }, { id: 'l3' }]), [{ id: 'l2', available: 2 }, { id: 'l3', available: 3 }, { id: 'l5', available: 5 }]);
    assert.deepEqual(counts, [2, 1, -3], 'one build per count and query');
    // Beyond the cached counts, every run builds (what is kept stays bounded) and still binds right.
    const many = Array.from({ length: MAX_PREPARED_LIST_ITEMS + 1 }, (_, i) => ({ id: `m${i}`, n: i }));
    await insertMany.run(store.db, many);
    await insertMany.run(store.db, many.map((m) => ({ id: `${m.id}x`, n: m.n })));
    assert.deepEqual(counts.slice(3), [MAX_PREPARED_LIST_ITEMS + 1, MAX_PREPARED_LIST_ITEMS + 1]);
    assert.equal((await byIds.all(store.db, [{ id: `m${MAX_PREPARED_LIST_ITEMS}x` }]))[0]?.available, MAX_PREPARED_LIST_ITEMS);
    assert.throws(() => byIds.run(store.db, []), /empty/);
  });
});
