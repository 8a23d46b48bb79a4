/**
 * A store bound to a batch's transaction on the server databases: a failed inner `tx` leaves
 * neither its writes nor an aborted transaction behind, so code that retries it (inventory's
 * reserve after a concurrent writer's unique violation) can. Runs against the local PostgreSQL
 * and MariaDB when they answer, and says so when they do not.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Kysely } from 'kysely';
import { createLogger } from '../src/service-kit/logger.js';
import { Store, isUniqueViolation, rawSql } from '../src/store/store.js';

interface Db {
  [table: string]: { id: string; n: number };
}

const SERVERS = [
  { name: 'PostgreSQL', url: 'postgres://postgres@127.0.0.1:5432/test' },
  { name: 'MariaDB/MySQL', url: 'mysql://root@127.0.0.1:3306/test' },
];

for (const server of SERVERS) {
  test(`on ${server.name}: a bound tx that fails is undone alone and the batch transaction goes on`, async (t) => {
    let store: Store<Db>;
    try {
      store = await Store.open<Db>({ url: server.url, log: createLogger({ service: 'bound-test', instance: 't', version: 'v1' }, 'silent'), poolSize: 2 });
    } catch (err) {
      t.skip(`${server.name} is not reachable at ${server.url} (${(err as Error).message}); skipped`);
      return;
    }
    const table = `concord_bound_t${process.pid}`;
    try {
      await rawSql(store.db, `create table ${table} (id varchar(20) primary key, n integer not null)`);
      await rawSql(store.db, `insert into ${table} (id, n) values ('taken', 0)`);
      let retried = 0;
      await store.tx(async (trx) => {
        const bound = store.bound(trx);
        const insert = (id: string) => bound.tx(async (inner: Kysely<Db>) => {
          await inner.insertInto(table).values({ id: `${id}-side`, n: 1 }).execute();
          await inner.insertInto(table).values({ id, n: 1 }).execute();
        });
        // The first attempt writes a row, then hits the unique key: both are undone together.
        await assert.rejects(insert('taken'), (err: unknown) => isUniqueViolation(err));
        retried++;
        // The retry runs in the same batch transaction, which PostgreSQL would otherwise refuse.
        await insert('fresh');
        // Nested bound transactions keep their own savepoints.
        await bound.tx(async () => {
          await assert.rejects(bound.tx(async (inner: Kysely<Db>) => inner.insertInto(table).values({ id: 'taken', n: 2 }).execute()));
          await bound.tx(async (inner: Kysely<Db>) => inner.insertInto(table).values({ id: 'nested', n: 3 }).execute());
        });
      });
      assert.equal(retried, 1);
      const rows = await store.db.selectFrom(table).select(['id', 'n']).orderBy('id').execute();
      assert.deepEqual(
        rows.map((r) => [r.id, Number(r.n)]),
        [
          ['fresh', 1],
          ['fresh-side', 1],
          ['nested', 3],
          ['taken', 0],
        ],
      );
    } finally {
      await rawSql(store.db, `drop table if exists ${table}`).catch(() => {});
      await store.close();
    }
  });
}
