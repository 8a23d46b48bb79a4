import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AttemptOutcome } from '../src/mesh/outcome.js';
import {
  DEFAULT_RETRY_POLICY,
  decideRetry,
  isRetriable,
  MAX_RETRY_ATTEMPTS,
  RETRY_BASE_INTERVAL_MS,
  RETRY_MAX_INTERVAL_MS,
  type RetryPolicy,
  resolveRetryPolicy,
  retryBackoffMs,
} from '../src/mesh/retry.js';
import type { RetryOn } from '../src/mesh/types.js';
import { mulberry32 } from './mesh-helpers.js';

const policy = (...retryOn: RetryOn[]): RetryPolicy => resolveRetryPolicy({ attempts: 3, retryOn });

const OUTCOMES: Record<string, AttemptOutcome> = {
  '200': { status: 200 },
  '404': { status: 404 },
  '409': { status: 409 },
  '429': { status: 429 },
  '500': { status: 500 },
  '501': { status: 501 },
  '502': { status: 502 },
  '503': { status: 503 },
  '504': { status: 504 },
  '505': { status: 505 },
  'connect-failure': { error: 'connect-failure' },
  'refused-stream': { error: 'refused-stream' },
  reset: { error: 'reset' },
  timeout: { error: 'timeout' },
  overflow: { error: 'overflow' },
};

/** For each retryOn value, the outcomes it retries (Envoy router_filter.rst / retry_state_impl.cc). */
const TABLE: Record<string, string[]> = {
  '5xx': ['500', '501', '502', '503', '504', '505', 'connect-failure', 'refused-stream', 'reset', 'timeout'],
  'gateway-error': ['502', '503', '504', 'connect-failure', 'refused-stream', 'reset', 'timeout'],
  reset: ['connect-failure', 'refused-stream', 'reset', 'timeout'],
  'connect-failure': ['connect-failure'],
  'refused-stream': ['refused-stream'],
  'retriable-4xx': ['409'],
  'retriable-status-codes': [],
  '503': ['503'],
  '429': ['429'],
};

test('retryOn table: every condition against every outcome', () => {
  for (const [cond, retried] of Object.entries(TABLE)) {
    const p = policy(cond as RetryOn);
    for (const [name, outcome] of Object.entries(OUTCOMES)) {
      assert.equal(isRetriable(p, outcome), retried.includes(name), `retryOn ${cond}, outcome ${name}`);
    }
  }
});

test('conditions combine as a union; bare codes turn retriable-status-codes on', () => {
  const p = policy('connect-failure', '409' as RetryOn, '503');
  assert.ok(p.conditions.has('retriable-status-codes'));
  assert.deepEqual([...p.statusCodes].sort(), [409, 503]);
  for (const name of ['connect-failure', '409', '503']) assert.ok(isRetriable(p, OUTCOMES[name]!), name);
  for (const name of ['500', '502', 'reset', 'timeout']) assert.ok(!isRetriable(p, OUTCOMES[name]!), name);
  assert.ok(!isRetriable(policy('5xx'), { status: 409 }));
});

test('Istio’s default when no retries are configured: 2 retries on connect-failure, refused-stream and 503', () => {
  assert.equal(resolveRetryPolicy(undefined), DEFAULT_RETRY_POLICY);
  const d = DEFAULT_RETRY_POLICY;
  assert.equal(d.attempts, 2);
  assert.equal(d.explicit, false);
  assert.ok(isRetriable(d, { status: 503 }));
  assert.ok(isRetriable(d, { error: 'connect-failure' }));
  assert.ok(isRetriable(d, { error: 'refused-stream' }));
  assert.ok(!isRetriable(d, { status: 500 }));
  assert.ok(!isRetriable(d, { error: 'reset' }));
  assert.ok(!isRetriable(d, { error: 'timeout' }));
});

test('resolveRetryPolicy: attempts 0 disables; empty retryOn keeps the default conditions; limits and junk', () => {
  const off = resolveRetryPolicy({ attempts: 0, retryOn: [] });
  assert.equal(off.attempts, 0);
  assert.equal(decideRetry(off, 1, { status: 503 }, Number.POSITIVE_INFINITY, mulberry32(1)).retry, false);
  const bare = resolveRetryPolicy({ attempts: 4, retryOn: [], perTryTimeoutMs: 0 });
  assert.equal(bare.explicit, true);
  assert.equal(bare.attempts, 4);
  assert.equal(bare.perTryTimeoutMs, undefined);
  assert.ok(isRetriable(bare, { status: 503 }));
  assert.equal(resolveRetryPolicy({ attempts: 1e9, retryOn: ['5xx'] }).attempts, MAX_RETRY_ATTEMPTS);
  assert.equal(resolveRetryPolicy({ attempts: -2, retryOn: ['5xx'] }).attempts, 0);
  assert.equal(resolveRetryPolicy({ attempts: 2, retryOn: ['5xx'], perTryTimeoutMs: 250 }).perTryTimeoutMs, 250);
  const junk = resolveRetryPolicy({ attempts: 2, retryOn: ['unavailable', 'cancelled', '5xx'] as RetryOn[] });
  assert.deepEqual([...junk.conditions], ['5xx']);
});

test('decideRetry: attempts counts retries, so attempts: 3 allows 4 tries', () => {
  const p = policy('5xx');
  const r = mulberry32(3);
  for (const attempt of [1, 2, 3]) {
    const d = decideRetry(p, attempt, { status: 503 }, Number.POSITIVE_INFINITY, r);
    assert.equal(d.retry, true, `after try ${attempt}`);
    assert.equal(d.retry && d.retryNumber, attempt);
  }
  assert.deepEqual(decideRetry(p, 4, { status: 503 }, Number.POSITIVE_INFINITY, r), { retry: false, reason: 'exhausted' });
  assert.deepEqual(decideRetry(p, 1, { status: 200 }, Number.POSITIVE_INFINITY, r), { retry: false, reason: 'not-retriable' });
  assert.deepEqual(decideRetry(p, 1, { error: 'overflow' }, Number.POSITIVE_INFINITY, r), { retry: false, reason: 'overflow' });
});

test('decideRetry: no retry when the back-off would reach the route deadline', () => {
  const p = policy('5xx');
  assert.deepEqual(
    decideRetry(p, 1, { status: 503 }, 10, () => 0.5),
    { retry: false, reason: 'deadline' },
  ); // back-off 12 ms
  assert.deepEqual(
    decideRetry(p, 1, { status: 503 }, 13, () => 0.5),
    { retry: true, delayMs: 12, retryNumber: 1 },
  );
  assert.deepEqual(
    decideRetry(p, 1, { status: 503 }, 0, () => 0),
    { retry: false, reason: 'deadline' },
  );
});

test('faults and retries compose: an injected abort is retried by an explicit policy, not by the implicit default', () => {
  const injected: AttemptOutcome = { status: 503, injected: true };
  assert.equal(decideRetry(policy('gateway-error'), 1, injected, Number.POSITIVE_INFINITY, mulberry32(1)).retry, true);
  assert.equal(decideRetry(resolveRetryPolicy({ attempts: 2, retryOn: [] }), 1, injected, Number.POSITIVE_INFINITY, mulberry32(1)).retry, true);
  assert.deepEqual(decideRetry(DEFAULT_RETRY_POLICY, 1, injected, Number.POSITIVE_INFINITY, mulberry32(1)), {
    retry: false,
    reason: 'injected-fault-without-retry-policy',
  });
  assert.equal(decideRetry(DEFAULT_RETRY_POLICY, 1, { status: 503 }, Number.POSITIVE_INFINITY, mulberry32(1)).retry, true, 'a real 503 still is');
});

test('Envoy back-off: retry N waits uniform [0, (2^N−1)·25 ms), capped at 250 ms', () => {
  assert.equal(RETRY_BASE_INTERVAL_MS, 25);
  assert.equal(RETRY_MAX_INTERVAL_MS, 250);
  const almostOne = () => 1 - 1e-12;
  assert.deepEqual(
    [1, 2, 3, 4, 5, 10, 100].map((n) => retryBackoffMs(n, almostOne)),
    [24, 74, 174, 250, 250, 250, 250],
  );
  assert.deepEqual(
    [1, 2, 3].map((n) => retryBackoffMs(n, () => 0)),
    [0, 0, 0],
  );
  const r = mulberry32(9);
  for (let n = 1; n <= 6; n++) {
    let max = 0;
    let sum = 0;
    for (let i = 0; i < 5000; i++) {
      const d = retryBackoffMs(n, r);
      assert.ok(d >= 0 && d <= 250 && Number.isInteger(d));
      max = Math.max(max, d);
      sum += d;
    }
    const upper = Math.min(250, (2 ** n - 1) * 25);
    assert.ok(max >= upper * 0.9, `retry ${n}: max ${max}`);
    if ((2 ** n - 1) * 25 <= 250) assert.ok(Math.abs(sum / 5000 - upper / 2) < upper * 0.05, `retry ${n}: mean ${sum / 5000}`);
  }
  assert.equal(
    retryBackoffMs(1, () => 0.5, 100, 1000),
    50,
    'base and max are parameters',
  );
});

/** Runs one call: tries until success or the policy says stop. `fails(tryIndex)` decides each try. */
function simulate(p: RetryPolicy, calls: number, seed: number, fails: (call: number, tryNo: number, random: () => number) => boolean): number {
  const random = mulberry32(seed);
  let ok = 0;
  for (let call = 0; call < calls; call++) {
    for (let tryNo = 1; ; tryNo++) {
      if (!fails(call, tryNo, random)) {
        ok++;
        break;
      }
      if (!decideRetry(p, tryNo, { status: 503 }, Number.POSITIVE_INFINITY, random).retry) break;
    }
  }
  return ok / calls;
}

test('simulation: an upstream failing half its calls with 503, attempts: 3 (up to 4 tries)', () => {
  const p = policy('5xx');
  // Half the endpoints fail (one of two instances is broken) and a retry goes to another
  // endpoint (exclude, see balancers.ts): every call succeeds by its second try at the latest.
  const perEndpoint = simulate(p, 10_000, 1, (call, tryNo) => tryNo === 1 && call % 2 === 0);
  assert.ok(perEndpoint >= 0.99, `success ${perEndpoint}`);
  // Half of all tries fail independently: success is 1 − 0.5^4 = 93.75 %, and ≥ 99 % needs
  // attempts ≥ 6 (1 − 0.5^7 = 99.2 %). Probability, not policy, caps this case.
  const iid3 = simulate(p, 10_000, 2, (_c, _t, random) => random() < 0.5);
  assert.ok(Math.abs(iid3 - 0.9375) < 0.01, `iid success with 3 retries ${iid3}`);
  const iid6 = simulate(resolveRetryPolicy({ attempts: 6, retryOn: ['5xx'] }), 10_000, 3, (_c, _t, random) => random() < 0.5);
  assert.ok(iid6 >= 0.99, `iid success with 6 retries ${iid6}`);
});
