/** Prepared queries on a real SQLite store: values bound by name, compiled once, misuse refused. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Kysely, sql } from 'kysely';
import { prepared } from '../src/store/prepared.js';
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
});
