/**
 * Resilience on real processes, seen from a real caller (apps/mesh-probe): outlier detection
 * (ejection after consecutive 5xx, return after baseEjectionTime, maxEjectionPercent), retries
 * against failing upstreams, and per-try and route timeouts. One system for the file: three
 * sample instances — sample-1 and sample-2 are v1, sample-3 is v2 — and the probe. Each test sets
 * the instances' behaviour it needs (POST /internal/sample/mode on the instance's own address).
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { type System, pollUntil, startSystem } from './harness.js';
import { type ProbeResult, applyAndWait, assertWithin, ejected, instanceOf, probe, setMode, share } from './mesh-helpers.js';

const PROBE = 'probe-1';
const SAMPLES = ['sample-1', 'sample-2', 'sample-3'];

const SUBSETS = `  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`;

/** A DestinationRule for sample with round robin (so "every other call" is exact) and `policy` lines. */
const dr = (policy = '') => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: sample}
spec:
  host: sample
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
${policy}${SUBSETS}`;

/** A VirtualService for sample: one route to `destination`, with `extra` route fields. */
const vs = (destination: string, extra: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: sample}
spec:
  hosts: [sample]
  http:
  - route:
    - destination: ${destination}
${extra}`;

const hello = (count: number, concurrency = 1) => ({ service: 'sample', path: '/api/sample/hello', count, concurrency });

describe('mesh resilience', () => {
  let sys: System;

  before(async () => {
    sys = await startSystem({
      name: 'mesh-resilience',
      topology: 'services:\n  - name: sample\n    instances: 3\n    versions: [v1, v1, v2]\n  - name: probe\n    app: mesh-probe\n',
      env: { CONCORD_LOG_LEVEL: 'warn' },
    });
  });
  after(() => sys?.stop());
  beforeEach(async () => {
    for (const id of SAMPLES) await setMode(sys, id, 'ok');
  });

  test('outlier detection: an endpoint answering 5xx is ejected after consecutive5xxErrors and gets traffic again after baseEjectionTime', async () => {
    const baseMs = 2000;
    await applyAndWait(
      sys,
      `${dr(`    outlierDetection: {consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: ${baseMs}ms, maxEjectionPercent: 50}\n`)}---\n${vs('{host: sample}', '    retries: {attempts: 0}\n')}`,
      [PROBE],
    );
    await setMode(sys, 'sample-2', 'always-503');
    const first = await probe(sys, PROBE, hello(30));
    const bad = first.results.filter((r) => instanceOf(r) === 'sample-2');
    assert.equal(bad.length, 3, `sample-2 got exactly consecutive5xxErrors = 3 calls, then none: ${JSON.stringify(first.summary)}`);
    assert.ok(bad.every((r) => r.status === 503));
    assert.deepEqual((await ejected(sys, PROBE))['sample|'], ['sample-2']);
    const third = bad[2] as ProbeResult;
    const ejectedAt = third.startMs + third.durationMs;

    // Polled in small sequential batches: the first call to reach sample-2 again tells when it came back.
    const back = await pollUntil(
      'sample-2 to get traffic again',
      async () => (await probe(sys, PROBE, hello(4))).results.find((r) => instanceOf(r) === 'sample-2'),
      baseMs + 5000,
      10,
    );
    const outMs = back.startMs - ejectedAt;
    assert.ok(outMs >= baseMs - 5, `sample-2 came back after ${outMs.toFixed(0)} ms, before baseEjectionTime ${baseMs} ms`);
    assert.ok(outMs <= baseMs + 500, `sample-2 came back ${outMs.toFixed(0)} ms after its ejection, long after baseEjectionTime ${baseMs} ms`);
    const healthy = first.results.filter((r) => instanceOf(r) !== 'sample-2');
    assert.ok(healthy.every((r) => r.status === 200));
  });

  test('outlier detection: maxEjectionPercent holds — with two of three endpoints failing and 50 %, only one is ejected', async () => {
    await setMode(sys, 'sample-1', 'always-503');
    await setMode(sys, 'sample-2', 'always-503');
    const policy = (maxPercent: number) =>
      `    outlierDetection: {consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: ${maxPercent}}\n`;
    await applyAndWait(sys, `${dr(policy(50))}---\n${vs('{host: sample}', '    retries: {attempts: 0}\n')}`, [PROBE]);
    const r = await probe(sys, PROBE, hello(90));
    const out = (await ejected(sys, PROBE))['sample|'] ?? [];
    assert.equal(out.length, 1, `one endpoint ejected: ${JSON.stringify(out)}`);
    const stillFailing = out[0] === 'sample-1' ? 'sample-2' : 'sample-1';
    const late = r.results.slice(-30);
    assert.ok(
      late.some((x) => instanceOf(x) === stillFailing),
      `the second failing endpoint (${stillFailing}) keeps getting traffic: ${JSON.stringify(r.summary)}`,
    );

    // The contrast: with 100 % both failing endpoints go, and every call lands on sample-3.
    await applyAndWait(sys, `${dr(policy(100))}---\n${vs('{host: sample}', '    retries: {attempts: 0}\n')}`, [PROBE]);
    const all = await probe(sys, PROBE, hello(60));
    assert.deepEqual((await ejected(sys, PROBE))['sample|']?.sort(), ['sample-1', 'sample-2']);
    assert.ok(
      all.results.slice(-30).every((x) => instanceOf(x) === 'sample-3' && x.status === 200),
      JSON.stringify(all.summary),
    );
  });

  test('retries: one of two instances answering 503 (half the calls fail without retries); attempts: 3 gives ≥ 99 % success, each retry on the other endpoint', async () => {
    await setMode(sys, 'sample-2', 'always-503');
    await applyAndWait(sys, `${dr()}---\n${vs('{host: sample, subset: v1}', '    retries: {attempts: 0}\n')}`, [PROBE]);
    const without = await probe(sys, PROBE, hello(400, 8));
    assertWithin(
      share(without.results, (r) => r.status === 503),
      0.5,
      0.05,
      'share failing without retries',
    );

    await applyAndWait(sys, `${dr()}---\n${vs('{host: sample, subset: v1}', '    retries: {attempts: 3, retryOn: 5xx}\n')}`, [PROBE]);
    const withRetries = await probe(sys, PROBE, hello(1000, 8));
    const ok = share(withRetries.results, (r) => r.status === 200);
    assert.ok(ok >= 0.99, `success with attempts: 3 is ${(ok * 100).toFixed(2)} %`);
    const retried = withRetries.results.filter((r) => r.attempts > 1);
    assert.ok(retried.length >= 300, `the calls that first reached sample-2 were retried (${retried.length})`);
    assert.ok(
      retried.every((r) => instanceOf(r) === 'sample-1'),
      'a retry goes to the endpoint not yet tried',
    );
  });

  test('retries: a single instance failing every other call (deterministic alternation) gives 100 % with attempts: 3', async () => {
    const flaky = (attempts: number) =>
      `${dr()}---\n${vs('{host: sample, subset: v2}', attempts === 0 ? '    retries: {attempts: 0}\n' : `    retries: {attempts: ${attempts}, retryOn: 5xx}\n`)}`;
    await applyAndWait(sys, flaky(0), [PROBE]);
    const without = await probe(sys, PROBE, { service: 'sample', path: '/api/sample/flaky', count: 100, concurrency: 1 });
    assert.equal(without.summary.byStatus['503'], 50, JSON.stringify(without.summary));

    await setMode(sys, 'sample-3', 'ok');
    await applyAndWait(sys, flaky(3), [PROBE]);
    const r = await probe(sys, PROBE, { service: 'sample', path: '/api/sample/flaky', count: 200, concurrency: 1 });
    assert.equal(r.summary.byStatus['200'], 200, JSON.stringify(r.summary));
    assert.ok(
      r.results.every((x) => x.attempts === 2 && instanceOf(x) === 'sample-3'),
      'every call fails once and succeeds on its first retry',
    );
  });

  test('perTryTimeout bounds each try and the route timeout bounds the whole call: no call outlives its deadline', async () => {
    const routeMs = 400;
    const perTryMs = 100;
    await applyAndWait(
      sys,
      `${dr()}---\n${vs('{host: sample, subset: v1}', `    timeout: ${routeMs}ms\n    retries: {attempts: 10, perTryTimeout: ${perTryMs}ms, retryOn: 5xx}\n`)}`,
      [PROBE],
    );
    // Each try is told its own budget, not the route's.
    const who = await probe(sys, PROBE, { service: 'sample', path: '/api/sample/whoami', count: 20, concurrency: 4, includeBody: true });
    for (const x of who.results) {
      assert.equal(x.status, 200);
      const announced = Number(x.body.timeoutMs);
      assert.ok(announced > 0 && announced < perTryMs, `x-concord-timeout-ms ${x.body.timeoutMs} is within the per-try budget`);
    }

    // Every try times out; the call ends at the route deadline (give or take timer slack on a busy machine).
    const slow = await probe(sys, PROBE, { service: 'sample', path: '/api/sample/slow?ms=2000', count: 20, concurrency: 20 });
    for (const x of slow.results) {
      assert.equal(x.error, 'timeout', JSON.stringify(x));
      assert.equal(x.status, 504);
      // Slack: timers fire late on a loaded 2-core machine (the full suite runs files in parallel).
      assert.ok(x.durationMs <= routeMs + 250, `a call lasted ${x.durationMs.toFixed(0)} ms, past the ${routeMs} ms route timeout`);
      assert.ok(x.durationMs >= routeMs - perTryMs, `a call gave up after ${x.durationMs.toFixed(0)} ms, with retry time left`);
      assert.ok(x.attempts >= 2 && x.attempts <= Math.ceil(routeMs / perTryMs), `${x.attempts} tries of ${perTryMs} ms in ${routeMs} ms`);
    }
  });
});
