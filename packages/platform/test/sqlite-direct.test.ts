/**
 * Statements inside a SQLite transaction of a Store run on SQLite directly (store.ts, HELD):
 * the same results as through Kysely, failures as rejected promises, and nothing outside a
 * transaction runs inside it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CompiledQuery, type Kysely } from 'kysely';
import { prepared } from '../src/store/prepared.js';
import { type Store, execute } from '../src/store/store.js';
import { openTempSqliteStore } from './sqlite-store.js';

interface Db {
  counter: { id: string; n: number };
}

const read = prepared<{ id: string }, Db['counter']>(['id'], (db: Kysely<Db>, p) => db.selectFrom('counter').selectAll().where('id', '=', p.id));
const bump = prepared<{ id: string }>(['id'], (db: Kysely<Db>, p) =>
  db
    .updateTable('counter')
    .set((eb) => ({ n: eb('n', '+', 1) }))
    .where('id', '=', p.id),
);

describe('statements of a SQLite transaction run directly', () => {
  let store: Store<Db>;
  let close = async () => {};

  before(async () => {
    ({ store, close } = await openTempSqliteStore<Db>('direct', [
      {
        version: 1,
        name: 'counter',
        up: (db) =>
          db.schema
            .createTable('counter')
            .addColumn('id', 'text', (c) => c.primaryKey())
            .addColumn('n', 'integer', (c) => c.notNull())
            .execute(),
      },
    ]));
  });
  after(() => close());

  test('inside a transaction a statement gives what Kysely gives: rows, rows changed and the inserted row id', async () => {
    const statements = [
      CompiledQuery.raw("insert into counter (id, n) values ('a', 1), ('b', 1)", []),
      CompiledQuery.raw('update counter set n = n + 1 where id = ?', ['a']),
      CompiledQuery.raw('select id, n from counter order by id', []),
      CompiledQuery.raw('delete from counter where id = ?', ['nobody']),
    ];
    const viaKysely = await store
      .tx(async (trx) => {
        const out = [];
        for (const q of statements) out.push(await trx.executeQuery(q));
        throw Object.assign(new Error('roll back'), { out });
      })
      .catch((err: { out: unknown[] }) => err.out);
    const direct = await store
      .tx(async (trx) => {
        const out = [];
        for (const q of statements) out.push(await execute(trx, q.sql, q.parameters));
        throw Object.assign(new Error('roll back'), { out });
      })
      .catch((err: { out: unknown[] }) => err.out);
    assert.deepEqual(direct, viaKysely);
    assert.deepEqual((direct[2] as { rows: unknown[] }).rows, [
      { id: 'a', n: 2 },
      { id: 'b', n: 1 },
    ]);
    assert.equal((direct[0] as { numAffectedRows: bigint }).numAffectedRows, 2n);
    assert.equal((await store.db.selectFrom('counter').selectAll().execute()).length, 0, 'both transactions rolled back');
  });

  test('a failing statement is a rejected promise, not a throw at the call, and its transaction rolls back whole', async () => {
    await assert.rejects(
      store.tx(async (trx) => {
        await execute(trx, "insert into counter (id, n) values ('c', 1)", []);
        const pending = execute(trx, "insert into counter (id, n) values ('c', 2)", []);
        assert.ok(pending instanceof Promise, 'the call returned');
        await pending;
      }),
      /UNIQUE constraint failed/,
    );
    assert.equal(await read.first(store.db, { id: 'c' }), undefined);
  });

  test('a statement outside the transaction waits for its commit and never sees its uncommitted writes', async () => {
    await store.tx((trx) => execute(trx, "insert into counter (id, n) values ('d', 0)", []));
    let release = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let insideDone = false;
    const inside = store.tx(async (trx) => {
      await bump.run(trx, { id: 'd' });
      await gate;
      await bump.run(trx, { id: 'd' });
      insideDone = true;
    });
    // Through the store's own connection while the transaction holds it: queued behind it.
    const outside = read.first(store.db, { id: 'd' }).then((row) => ({ row, insideDone }));
    await new Promise((r) => setImmediate(r));
    release();
    await inside;
    const seen = await outside;
    assert.equal(seen.insideDone, true, 'the outside read ran only once the transaction had ended');
    assert.equal(seen.row?.n, 2, 'and saw its committed writes, both of them');
  });
});
