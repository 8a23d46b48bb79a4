import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Kysely } from 'kysely';
import type { MeshClient } from '../src/mesh/client.js';
import { type OutboxTable, OutboxRelay, enqueue, outboxMigration } from '../src/outbox/outbox.js';
import { createLogger } from '../src/service-kit/logger.js';
import { openTempSqliteStore } from './sqlite-store.js';

test('a failed delivery is rescheduled at a whole millisecond (a bigint column: PostgreSQL refuses a fraction)', async () => {
  const { store, close } = await openTempSqliteStore<OutboxTable>('outbox', [outboxMigration(1)]);
  let calls = 0;
  // The receiver answers 503 (transient): the relay counts the attempt and backs off with jitter.
  const mesh = { request: async () => ({ status: 503, body: { title: 'unavailable' }, headers: {} }) } as unknown as MeshClient;
  const relay = new OutboxRelay({
    store,
    mesh,
    log: createLogger({ service: 'outbox-test', instance: 't', version: 'v1' }, 'silent'),
    random: () => {
      calls++;
      return 0.3711;
    },
    pollMs: 60_000,
  });
  try {
    await store.tx((trx) => enqueue(trx as Kysely<OutboxTable>, { id: 'm-1', destination: 'recommendation', path: '/internal/events', body: { n: 1 } }));
    const before = Date.now();
    relay.start();
    const deadline = Date.now() + 10_000;
    let row: OutboxTable['outbox'] | undefined;
    while (Date.now() < deadline) {
      row = await store.db.selectFrom('outbox').selectAll().where('id', '=', 'm-1').executeTakeFirst();
      if (row && Number(row.attempts) >= 1) break;
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(Number(row?.attempts), 1, 'the relay recorded the failed attempt');
    assert.equal(row?.status, 'PENDING');
    assert.ok(calls >= 1, 'the backoff drew its jitter');
    const next = row?.next_attempt_ms as number;
    assert.ok(Number.isInteger(next), `next_attempt_ms ${next} is whole milliseconds`);
    // Attempt 1: equal jitter over 100 ms, so 50 + 0.3711 × 50 ms after the failure.
    assert.ok(next >= before + 50 && next <= Date.now() + 100, `next attempt ${next - before} ms after the start`);
  } finally {
    relay.close();
    await close();
  }
});
