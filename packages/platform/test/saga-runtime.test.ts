/**
 * The saga runtime on a real SQLite store: a step that never answers times out, is retried, and
 * the saga compensates (the log numbers the attempts as they ran); leading local steps run in
 * the creating transaction, and one that fails there is rolled back and left to the driver.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SagaRuntime, type SagaType } from '../src/saga/runtime.js';
import { type SagaTables, sagaMigration, sagaStorageMigration } from '../src/saga/schema.js';
import { createLogger } from '../src/service-kit/logger.js';
import type { Store } from '../src/store/store.js';
import { openTempSqliteStore } from './sqlite-store.js';

const log = createLogger({ service: 'saga-test', instance: 'test', version: 'v1' }, 'silent');

describe('saga runtime', () => {
  let store: Store<SagaTables>;
  let close = async () => {};

  before(async () => {
    ({ store, close } = await openTempSqliteStore<SagaTables>('saga-runtime', [sagaMigration(1), sagaStorageMigration(2)]));
  });
  after(() => close());

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

  test('leading local steps run in the creating transaction: the first call is begun with the creating write, and the driver does not begin it again', async () => {
    const calls: number[] = [];
    const type: SagaType<{ n: number; stamped?: boolean }> = {
      type: 'local-first',
      retry: { baseMs: 1, capMs: 2, maxAttempts: 3, maxCompensationAttempts: 3 },
      steps: [
        { name: 'stamp', kind: 'compensatable', local: async () => ({ stamped: true }), undoLocal: async () => undefined },
        {
          name: 'call',
          kind: 'retriable',
          run: async (ctx) => {
            calls.push(ctx.attempt);
            assert.equal(ctx.data.stamped, true, 'the local step\'s patch reached the next step');
          },
        },
      ],
    };
    const rt = new SagaRuntime({ store, log, owner: 'test-2' });
    rt.register(type);
    await store.tx((trx) => rt.create(trx, 'local-first', 'saga-2', { n: 2 }));
    const created = await rt.get('saga-2');
    assert.equal(created?.step, 'call', 'the creating write left the saga at its first call');
    assert.deepEqual(
      created?.events.map((e) => `${e.event} ${e.step} ${e.attempt}`),
      ['created  0', 'started stamp 1', 'succeeded stamp 1', 'started call 1'],
    );
    rt.start('saga-2');
    assert.equal(await rt.waitFor('saga-2', 10_000), true);
    const done = await rt.get('saga-2');
    assert.equal(done?.status, 'COMPLETED');
    assert.deepEqual(calls, [1]);
    assert.deepEqual(
      done?.events.filter((e) => e.step === 'call').map((e) => `${e.event} ${e.attempt}`),
      ['started 1', 'succeeded 1'],
      'one started event for the first attempt: the driver did not begin it again',
    );
    await rt.close(1000);
  });

  test('a leading local step that fails at creation is rolled back there and run by the driver with its retries', async () => {
    let tries = 0;
    const type: SagaType<{ n: number }> = {
      type: 'local-flaky',
      retry: { baseMs: 1, capMs: 2, maxAttempts: 3, maxCompensationAttempts: 3 },
      steps: [
        {
          name: 'write',
          kind: 'retriable',
          local: async (trx) => {
            tries++;
            await trx.insertInto('saga_log').values({ saga_id: 'marker', seq: tries, step: 'x', phase: 'forward', event: 'x', attempt: 0, detail: null, at: '' }).execute();
            if (tries === 1) throw new Error('transient failure');
          },
        },
      ],
    };
    const rt = new SagaRuntime({ store, log, owner: 'test-3' });
    rt.register(type);
    await store.tx((trx) => rt.create(trx, 'local-flaky', 'saga-3', { n: 3 }));
    const created = await rt.get('saga-3');
    assert.equal(created?.status, 'RUNNING');
    assert.deepEqual(created?.events.map((e) => e.event), ['created'], 'nothing of the failed attempt was recorded');
    assert.equal((await store.db.selectFrom('saga_log').select('seq').where('saga_id', '=', 'marker').execute()).length, 0, 'its write was rolled back');
    rt.start('saga-3');
    assert.equal(await rt.waitFor('saga-3', 10_000), true);
    assert.equal((await rt.get('saga-3'))?.status, 'COMPLETED');
    assert.equal(tries, 2);
    assert.equal((await store.db.selectFrom('saga_log').select('seq').where('saga_id', '=', 'marker').execute()).length, 1, 'the driver\'s attempt committed');
    await rt.close(1000);
  });
  test('a step marked settles releases the waiters once it has committed; the steps after it go on, and the saga then completes', async () => {
    let markStarted: () => void = () => {};
    const lastStarted = new Promise<void>((r) => {
      markStarted = r;
    });
    let releaseLast: () => void = () => {};
    const lastMayEnd = new Promise<void>((r) => {
      releaseLast = r;
    });
    const type: SagaType<{ n: number }> = {
      type: 'settles-early',
      retry: { baseMs: 1, capMs: 2, maxAttempts: 3, maxCompensationAttempts: 3 },
      steps: [
        { name: 'reserve', kind: 'compensatable', run: async () => undefined, undo: async () => undefined },
        { name: 'confirm', kind: 'retriable', settles: true, local: async () => undefined },
        {
          name: 'award',
          kind: 'retriable',
          run: async () => {
            markStarted();
            await lastMayEnd;
          },
        },
      ],
    };
    const rt = new SagaRuntime({ store, log, owner: 'test-1' });
    rt.register(type);
    await store.tx((trx) => rt.create(trx, 'settles-early', 'saga-settles', { n: 1 }));
    rt.start('saga-settles');
    assert.equal(await rt.waitFor('saga-settles', 10_000), true, 'released by the settling step');
    const early = await rt.get('saga-settles');
    assert.ok(early?.events.some((e) => e.step === 'confirm' && e.event === 'succeeded'), 'the settling step had committed when its waiter was released');
    await lastStarted;
    assert.notEqual((await rt.get('saga-settles'))?.status, 'COMPLETED', 'the step after it is still running');
    releaseLast();
    assert.equal(await rt.waitFor('saga-settles', 10_000), true, 'a later waiter waits for the end');
    assert.equal((await rt.get('saga-settles'))?.status, 'COMPLETED');
    await rt.close(1000);
  });

  test('only a retriable step may settle a saga: a compensatable one could still be undone', () => {
    const rt = new SagaRuntime({ store, log, owner: 'test-1' });
    assert.throws(
      () =>
        rt.register({
          type: 'settles-too-soon',
          retry: { baseMs: 1, capMs: 2, maxAttempts: 3, maxCompensationAttempts: 3 },
          steps: [{ name: 'reserve', kind: 'compensatable', settles: true, run: async () => undefined, undo: async () => undefined }],
        }),
      /only a retriable step settles a saga/,
    );
  });
});
