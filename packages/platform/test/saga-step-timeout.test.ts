/**
 * A saga step that never answers times out after its step timeout, on a real SQLite store: the
 * attempt fails, is retried, and the saga compensates once the attempts are spent; the log
 * numbers the attempts as they ran.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SagaRuntime, type SagaType } from '../src/saga/runtime.js';
import { type SagaTables, sagaMigration, sagaStorageMigration } from '../src/saga/schema.js';
import { createLogger } from '../src/service-kit/logger.js';
import { Store } from '../src/store/store.js';

const log = createLogger({ service: 'saga-test', instance: 'test', version: 'v1' }, 'silent');

describe('saga step timeouts', () => {
  let dir = '';
  let store: Store<SagaTables>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'concord-saga-timeout-'));
    store = await Store.open({ url: `sqlite:${join(dir, 's.db')}`, log });
    await store.migrate([sagaMigration(1), sagaStorageMigration(2)]);
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a step that never answers fails after its timeout, is retried, and the saga compensates', async () => {
    const runs: number[] = [];
    const aborted: boolean[] = [];
    let undone = 0;
    const type: SagaType<{ n: number }> = {
      type: 'hangs',
      retry: { baseMs: 1, capMs: 2, maxAttempts: 2, maxCompensationAttempts: 3 },
      steps: [
        {
          name: 'first',
          kind: 'compensatable',
          run: async () => undefined,
          undo: async () => {
            undone++;
          },
        },
        {
          name: 'hang',
          kind: 'compensatable',
          timeoutMs: 60,
          run: (ctx) =>
            new Promise((_, reject) => {
              runs.push(ctx.attempt);
              ctx.signal.addEventListener('abort', () => {
                aborted.push(true);
                reject(ctx.signal.reason);
              });
            }),
          undo: async () => undefined,
        },
      ],
    };
    const settled: string[] = [];
    const rt = new SagaRuntime({ store, log, owner: 'test-1', onSettled: (s) => settled.push(s.status) });
    rt.register(type);
    await store.tx((trx) => rt.create(trx, 'hangs', 'saga-1', { n: 1 }));
    rt.start('saga-1');
    assert.equal(await rt.waitFor('saga-1', 10_000), true, 'the saga ends');
    const summary = await rt.get('saga-1');
    assert.equal(summary?.status, 'COMPENSATED');
    assert.deepEqual(runs, [1, 2], 'both attempts ran, numbered from 1 (the first was begun with the write of the step before)');
    const hang = (summary?.events ?? []).filter((e) => e.step === 'hang' && e.phase === 'forward').map((e) => `${e.event} ${e.attempt}`);
    assert.deepEqual(hang, ['started 1', 'failed 1', 'started 2', 'failed 2'], 'the log numbers each attempt the same in its started and its outcome events');
    assert.equal(aborted.length, 2, "each attempt's signal fired");
    assert.equal(undone, 1, 'the first step was undone');
    assert.ok(summary?.events.some((e) => e.step === 'hang' && e.event === 'failed' && /timed out/.test(e.detail ?? '')), 'the log says the step timed out');
    assert.deepEqual(settled, ['COMPENSATED']);
    await rt.close(1000);
  });
});
