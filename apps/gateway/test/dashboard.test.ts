import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CallOptions, CallResult } from '@concord/platform';
import { Dashboard } from '../src/dashboard.js';

type Behaviour = 'ok' | 'throw' | 'hang' | 'hang-ignoring-signal' | 404 | 500;

/** A mesh whose services behave as told, counting the calls that reach each. */
function fakeMesh() {
  const behaviour: Record<string, Behaviour> = { user: 'ok', order: 'ok', payment: 'ok', points: 'ok', recommendation: 'ok' };
  const calls: Record<string, number> = {};
  const answers: Record<string, unknown> = {
    user: { id: 'u1', email: 'u1@x', name: 'U', role: 'user' },
    order: { items: [{ id: 'o1' }], nextCursor: null },
    payment: { userId: 'u1', balance: 100 },
    points: { userId: 'u1', points: 7 },
    recommendation: { items: [{ productId: 'p-1', score: 3 }] },
  };
  const mesh = {
    async request<T>(service: string, call: CallOptions): Promise<CallResult<T>> {
      calls[service] = (calls[service] ?? 0) + 1;
      const b = behaviour[service];
      const result = (status: number, body: unknown) => ({ status, headers: {}, body: body as T, instance: null, attempts: 1 }) as CallResult<T>;
      if (b === 'throw') throw new Error(`${service} refused the connection`);
      if (b === 'hang') {
        return new Promise((_resolve, reject) => call.signal?.addEventListener('abort', () => reject(new Error('aborted')), { once: true }));
      }
      if (b === 'hang-ignoring-signal') return new Promise(() => {});
      if (b === 404) return result(404, { status: 404 });
      if (b === 500) return result(500, { status: 500 });
      return result(200, answers[service]);
    },
  };
  return { mesh, behaviour, calls };
}

const POLICY = { failureThreshold: 3, successThreshold: 2, timeoutMs: 1000, halfOpenMaxCalls: 1 };

function setup(deadlineMs = 40) {
  const f = fakeMesh();
  let now = 0;
  const d = new Dashboard(f.mesh, POLICY, deadlineMs, () => now);
  return { ...f, d, advance: (ms: number) => (now += ms) };
}

test('all parts answer: 200 with every part and degraded []', async () => {
  const { d } = setup();
  const out = await d.build('u1', {});
  assert.equal(out.status, 200);
  assert.deepEqual(out.body, {
    user: { id: 'u1', email: 'u1@x', name: 'U', role: 'user' },
    recentOrders: [{ id: 'o1' }],
    wallet: { userId: 'u1', balance: 100 },
    points: { userId: 'u1', points: 7 },
    recommendations: [{ productId: 'p-1', score: 3 }],
    degraded: [],
  });
});

test('a failed part falls back to its last good value, else to empty, and is named in degraded', async () => {
  const { d, behaviour } = setup();
  behaviour.recommendation = 'throw';
  const cold = await d.build('u1', {});
  assert.equal(cold.status, 200);
  assert.deepEqual(cold.body.recommendations, [], 'nothing cached: empty');
  assert.deepEqual(cold.body.degraded, ['recommendations']);
  behaviour.recommendation = 'ok';
  await d.build('u1', {});
  behaviour.recommendation = 500;
  behaviour.payment = 'throw';
  const warm = await d.build('u1', {});
  assert.deepEqual(warm.body.recommendations, [{ productId: 'p-1', score: 3 }], 'the last good value');
  assert.deepEqual(warm.body.wallet, { userId: 'u1', balance: 100 });
  assert.deepEqual(warm.body.degraded, ['wallet', 'recommendations']);
  const other = await d.build('u2', {});
  assert.equal(other.body.wallet, null, "another user's wallet is never served from u1's cache");
});

test('the user part decides the status: 404 when unknown, 503 when failed with nothing cached, 200 from the cache', async () => {
  const { d, behaviour } = setup();
  behaviour.user = 404;
  assert.equal((await d.build('nobody', {})).status, 404);
  behaviour.user = 'throw';
  assert.equal((await d.build('u1', {})).status, 503);
  behaviour.user = 'ok';
  await d.build('u1', {});
  behaviour.user = 'throw';
  const cached = await d.build('u1', {});
  assert.equal(cached.status, 200);
  assert.deepEqual(cached.body.degraded, ['user']);
});

test('one deadline for all parts: a hung part (even one that ignores the abort) is answered at the deadline and counted as a failure then', async () => {
  const { d, behaviour } = setup(50);
  behaviour.points = 'hang';
  behaviour.recommendation = 'hang-ignoring-signal';
  const t0 = performance.now();
  const out = await d.build('u1', {});
  const ms = performance.now() - t0;
  assert.ok(ms >= 45 && ms < 500, `${ms} ms`);
  assert.deepEqual(out.body.degraded, ['points', 'recommendations']);
  assert.equal(d.stats.get('recommendation')?.failed, 1);
  assert.equal(d.breakerOf('recommendation').failures, 1);
});

test('breaker: OPEN after the threshold, no call while OPEN, a trial after the timeout, CLOSED after two good trials', async () => {
  const { d, behaviour, calls, advance } = setup();
  behaviour.recommendation = 'throw';
  for (let i = 0; i < 3; i++) await d.build('u1', {});
  assert.equal(d.breakerOf('recommendation').state, 'OPEN');
  assert.equal(calls.recommendation, 3);
  for (let i = 0; i < 5; i++) assert.deepEqual((await d.build('u1', {})).body.degraded, ['recommendations']);
  assert.equal(calls.recommendation, 3, 'no call while OPEN');
  assert.equal(d.stats.get('recommendation')?.shortCircuited, 5);
  advance(999);
  await d.build('u1', {});
  assert.equal(calls.recommendation, 3);
  advance(1);
  await d.build('u1', {}); // the trial fails: OPEN again
  assert.equal(calls.recommendation, 4);
  assert.equal(d.breakerOf('recommendation').state, 'OPEN');
  assert.equal(d.stats.get('recommendation')?.opened, 2);
  behaviour.recommendation = 'ok';
  advance(1000);
  assert.deepEqual((await d.build('u1', {})).body.degraded, []);
  assert.equal(d.breakerOf('recommendation').state, 'HALF_OPEN');
  await d.build('u1', {});
  assert.equal(d.breakerOf('recommendation').state, 'CLOSED');
});

test('a 4xx is an answer, not an outage: it never opens a breaker', async () => {
  const { d, behaviour } = setup();
  behaviour.payment = 404;
  for (let i = 0; i < 10; i++) assert.deepEqual((await d.build('u1', {})).body.degraded, ['wallet']);
  assert.equal(d.breakerOf('payment').state, 'CLOSED');
});

test('a malformed 200 (no items) is a failure of that part', async () => {
  const f = fakeMesh();
  const mesh = {
    request: async <T>(service: string, call: CallOptions) => (service === 'order' ? ({ status: 200, headers: {}, body: { nope: 1 } as T, instance: null, attempts: 1 } as CallResult<T>) : f.mesh.request<T>(service, call)),
  };
  const d = new Dashboard(mesh, POLICY, 40);
  const out = await d.build('u1', {});
  assert.deepEqual(out.body.degraded, ['recentOrders']);
  assert.deepEqual(out.body.recentOrders, []);
});
