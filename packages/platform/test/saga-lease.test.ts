/**
 * Lease renewal on the server databases: it never waits for a saga row another transaction
 * holds (a group commit writing that saga), so it cannot deadlock with one; it renews the rest,
 * and the held row at the next renewal. Runs against the local PostgreSQL and MariaDB when they
 * answer, and says so when they do not.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SagaRuntime } from '../src/saga/runtime.js';
import { type SagaTables, sagaMigration, sagaStorageMigration } from '../src/saga/schema.js';
import { createLogger } from '../src/service-kit/logger.js';
import { Store, rawSql } from '../src/store/store.js';

const log = createLogger({ service: 'lease-test', instance: 't', version: 'v1' }, 'silent');
/** How long a renewal may take here; one that waited for the held row would take until it is released. */
const RENEW_BOUND_MS = 5000;

const SERVERS = [
  { name: 'PostgreSQL', admin: 'postgres://postgres@127.0.0.1:5432/postgres', url: (db: string) => `postgres://postgres@127.0.0.1:5432/${db}` },
  { name: 'MariaDB/MySQL', admin: 'mysql://root@127.0.0.1:3306/test', url: (db: string) => `mysql://root@127.0.0.1:3306/${db}` },
];

for (const server of SERVERS) {
  test(`on ${server.name}: a lease renewal skips the saga a transaction holds instead of waiting for it, and renews the rest`, async (t) => {
    let admin: Store<unknown>;
    try {
      admin = await Store.open({ url: server.admin, log, poolSize: 1 });
    } catch (err) {
      t.skip(`${server.name} is not reachable at ${server.admin} (${(err as Error).message}); skipped`);
      return;
    }
    const name = `concord_lease_t${process.pid}`;
    await rawSql(admin.db, `drop database if exists ${name}`);
    await rawSql(admin.db, `create database ${name}`);
    const store = await Store.open<SagaTables>({ url: server.url(name), log, poolSize: 4 });
    let release = () => {};
    try {
      await store.migrate([sagaMigration(1), sagaStorageMigration(2)]);
      const now = 1_000_000;
      const row = (id: string, owner: string, status: string) => ({
        id,
        type: 't',
        status,
        step: 0,
        attempts: 1,
        failure: null,
        last_error: null,
        resume: null,
        data: '{}',
        owner,
        lease_until_ms: now,
        created_at: 'x',
        updated_at: 'x',
      });
      await store.db
        .insertInto('sagas')
        .values([row('held', 'me', 'RUNNING'), row('free', 'me', 'COMPENSATING'), row('theirs', 'other', 'RUNNING'), row('done', 'me', 'COMPLETED')])
        .execute();
      const rt = new SagaRuntime({ store, log, owner: 'me', now: () => now, leaseMs: 30_000 });
      const leases = async () => Object.fromEntries((await store.db.selectFrom('sagas').select(['id', 'lease_until_ms']).execute()).map((r) => [r.id, Number(r.lease_until_ms)]));

      // Another transaction holds the row of saga "held" until released.
      let locked = () => {};
      const isLocked = new Promise<void>((r) => {
        locked = r;
      });
      const holder = store.db.transaction().execute(async (trx) => {
        await trx.selectFrom('sagas').select('id').where('id', '=', 'held').forUpdate().execute();
        locked();
        await new Promise<void>((r) => {
          release = r;
        });
      });
      await isLocked;
      const first = await Promise.race([rt.renewLeases(), new Promise<'waited'>((r) => setTimeout(() => r('waited'), RENEW_BOUND_MS).unref())]);
      assert.equal(first, 1, 'the renewal did not wait for the held row and renewed the one free row');
      assert.deepEqual(await leases(), { held: now, free: now + 30_000, theirs: now, done: now });
      release();
      await holder;
      assert.equal(await rt.renewLeases(), 2, 'once released, the next renewal takes it');
      assert.equal((await leases()).held, now + 30_000);
    } finally {
      release();
      await store.close();
      await rawSql(admin.db, `drop database if exists ${name}`).catch(() => {});
      await admin.close();
    }
  });
}
