import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AttemptOutcome } from '../src/mesh/outcome.js';
import { OutlierDetector } from '../src/mesh/outlier.js';
import type { OutlierDetection } from '../src/mesh/types.js';

const policy = (p: Partial<OutlierDetection> = {}): OutlierDetection => ({
  consecutive5xxErrors: 3,
  intervalMs: 10_000,
  baseEjectionTimeMs: 30_000,
  maxEjectionPercent: 100,
  ...p,
});
const S = (status: number): AttemptOutcome => ({ status });
const E = (error: 'connect-failure' | 'reset' | 'refused-stream' | 'timeout' | 'overflow'): AttemptOutcome => ({ error });
const ids = (xs: readonly { id: string }[]) => xs.map((x) => x.id);

test('an endpoint returning 5xx is ejected after consecutive5xxErrors and gets traffic again after baseEjectionTime', () => {
  const od = new OutlierDetector(policy());
  const eps = [{ id: 'a' }, { id: 'b' }, { id: 'c' }];
  od.setEndpoints(['a', 'b', 'c'], 0);
  assert.deepEqual(od.record('a', S(500), 1000), []);
  assert.deepEqual(od.record('a', S(503), 1001), []);
  assert.deepEqual(od.record('a', S(200), 1002), [], 'a success resets the count');
  od.record('a', S(500), 1003);
  od.record('a', S(500), 1004);
  const ev = od.record('a', S(500), 1005);
  assert.deepEqual(ev, [{ type: 'eject', id: 'a', reason: 'consecutive-5xx', atMs: 1005, untilMs: 31_005, timesEjected: 1 }]);
  assert.ok(od.isEjected('a', 1005));
  assert.deepEqual(ids(od.available(eps, 20_000)), ['b', 'c']);
  assert.ok(od.isEjected('a', 31_004));
  assert.ok(!od.isEjected('a', 31_005), 'back exactly after baseEjectionTime, no sweep needed');
  assert.deepEqual(ids(od.available(eps, 31_005)), ['a', 'b', 'c']);
  assert.deepEqual(od.sweep(40_000), [{ type: 'uneject', id: 'a', atMs: 31_005 }]);
  assert.deepEqual(od.sweep(50_000), [], 'reported once');
});

test('ejection time = baseEjectionTime × times ejected in a row, decaying while healthy, capped', () => {
  const od = new OutlierDetector(policy({ consecutive5xxErrors: 1, baseEjectionTimeMs: 100_000 }));
  od.setEndpoints(['a', 'b'], 0);
  const eject = (t: number) => {
    const ev = od.record('a', S(502), t);
    assert.equal(ev.at(-1)?.type, 'eject');
    return (ev.at(-1) as { untilMs: number }).untilMs - t;
  };
  // No sweeps: nothing decays; the cap is max(300 s, base) = 300 s.
  assert.equal(eject(0), 100_000);
  assert.equal(eject(100_000), 200_000);
  assert.equal(eject(300_000), 300_000);
  assert.equal(eject(600_000), 300_000);
  assert.equal(eject(900_000), 300_000);

  const od2 = new OutlierDetector(policy({ consecutive5xxErrors: 1, baseEjectionTimeMs: 1000, intervalMs: 500 }), { maxEjectionTimeMs: 10_000 });
  od2.setEndpoints(['a', 'b'], 0);
  od2.record('a', S(500), 0); // 1 s
  od2.record('a', S(500), 1000); // 2 s
  assert.equal(od2.health(3000).find((h) => h.id === 'a')?.backoff, 2);
  // Healthy from t = 3000: each sweep at least one interval after the un-ejection decays by one.
  od2.sweep(3000);
  assert.equal(od2.health(3000).find((h) => h.id === 'a')?.backoff, 2);
  od2.sweep(3500);
  od2.sweep(4000);
  assert.equal(od2.health(4000).find((h) => h.id === 'a')?.backoff, 0);
  const ev = od2.record('a', S(500), 5000);
  assert.equal((ev[0] as { untilMs: number }).untilMs, 6000, 'back to the base ejection time');
});

test('consecutiveGatewayErrors counts 502/503/504 and transport failures; another 5xx resets it', () => {
  const od = new OutlierDetector(policy({ consecutive5xxErrors: 0, consecutiveGatewayErrors: 2 }));
  od.setEndpoints(['a', 'b'], 0);
  od.record('a', S(502), 1);
  od.record('a', S(500), 2);
  assert.deepEqual(od.record('a', S(504), 3), [], '500 reset the gateway count');
  const ev = od.record('a', E('connect-failure'), 4);
  assert.equal(ev[0]?.type, 'eject');
  assert.equal((ev[0] as { reason: string }).reason, 'consecutive-gateway-errors');
  for (const err of ['reset', 'timeout', 'refused-stream'] as const) {
    const d = new OutlierDetector(policy({ consecutive5xxErrors: 0, consecutiveGatewayErrors: 2 }));
    d.setEndpoints(['x', 'y'], 0);
    d.record('x', E(err), 0);
    assert.equal(d.record('x', E(err), 0)[0]?.type, 'eject', err);
  }
});

test('transport failures also count as 5xx; 4xx is a success for outlier detection', () => {
  const od = new OutlierDetector(policy());
  od.setEndpoints(['a', 'b'], 0);
  od.record('a', E('timeout'), 1);
  od.record('a', S(500), 2);
  assert.equal(od.record('a', E('reset'), 3)[0]?.type, 'eject');
  od.record('b', S(500), 4);
  od.record('b', S(404), 5);
  od.record('b', S(500), 6);
  assert.deepEqual(od.record('b', S(500), 7), []);
});

test('injected faults, pool overflow, unknown endpoints and results during an ejection are ignored', () => {
  const od = new OutlierDetector(policy({ consecutive5xxErrors: 2 }));
  od.setEndpoints(['a', 'b'], 0);
  for (let i = 0; i < 5; i++) {
    assert.deepEqual(od.record('a', { status: 503, injected: true }, i), []);
    assert.deepEqual(od.record('a', E('overflow'), i), []);
  }
  assert.deepEqual(od.record('zzz', S(500), 0), []);
  assert.ok(!od.isEjected('a', 10));
  od.record('a', S(500), 10);
  od.record('a', S(500), 11);
  assert.ok(od.isEjected('a', 12));
  od.record('a', S(500), 12); // still in flight when ejected
  const back = 11 + 30_000;
  assert.deepEqual(od.record('a', S(500), back), [{ type: 'uneject', id: 'a', atMs: back }], 'counters start from zero again');
  assert.ok(!od.isEjected('a', back));
});

test('maxEjectionPercent holds: never more than that share ejected at once', () => {
  const od = new OutlierDetector(policy({ consecutive5xxErrors: 1, maxEjectionPercent: 30 }));
  const all = Array.from({ length: 10 }, (_, i) => `e${i}`);
  od.setEndpoints(all, 0);
  const events = all.flatMap((id, i) => od.record(id, S(503), i));
  assert.equal(events.filter((e) => e.type === 'eject').length, 3);
  assert.equal(events.filter((e) => e.type === 'eject-skipped').length, 7);
  assert.equal(od.stats(100).ejectedNow, 3);
  assert.deepEqual(od.stats(100), { endpoints: 10, ejectedNow: 3, ejectionsTotal: 3, ejectionsSkipped: 7 });
  // Keep failing everything for a long while: the invariant holds at every moment.
  for (let t = 100; t < 200_000; t += 997) {
    for (const id of all) od.record(id, S(503), t);
    assert.ok(od.stats(t).ejectedNow <= 3, `at ${t}: ${od.stats(t).ejectedNow} ejected`);
  }
  assert.ok(od.stats(200_000).ejectionsTotal > 3, 'slots are reused once ejections end');
});

test('Envoy’s rule with Istio’s default 10 %: small pools eject nothing unless alwaysEjectOneHost', () => {
  const strict = new OutlierDetector(policy({ consecutive5xxErrors: 1, maxEjectionPercent: 10 }));
  strict.setEndpoints(['a', 'b', 'c'], 0);
  assert.equal(strict.record('a', S(500), 0)[0]?.type, 'eject-skipped');
  const lenient = new OutlierDetector(policy({ consecutive5xxErrors: 1, maxEjectionPercent: 10 }), { alwaysEjectOneHost: true });
  lenient.setEndpoints(['a', 'b', 'c'], 0);
  assert.equal(lenient.record('a', S(500), 0)[0]?.type, 'eject');
  assert.equal(lenient.record('b', S(500), 0)[0]?.type, 'eject-skipped', 'only the first one');
  const half = new OutlierDetector(policy({ consecutive5xxErrors: 1, maxEjectionPercent: 50 }));
  half.setEndpoints(['a', 'b'], 0);
  assert.equal(half.record('a', S(500), 0)[0]?.type, 'eject');
  assert.equal(half.record('b', S(500), 0)[0]?.type, 'eject-skipped');
});

test('minHealthPercent: below it, outlier detection is suspended and every endpoint is available', () => {
  const eps = [{ id: 'a' }, { id: 'b' }, { id: 'c' }, { id: 'd' }];
  const make = (minHealthPercent?: number) => {
    const od = new OutlierDetector(policy({ consecutive5xxErrors: 1, maxEjectionPercent: 100, minHealthPercent }));
    od.setEndpoints(['a', 'b', 'c', 'd'], 0);
    od.record('a', S(500), 0);
    od.record('b', S(500), 0);
    return od;
  };
  assert.deepEqual(ids(make(75).available(eps, 1)), ['a', 'b', 'c', 'd']);
  assert.deepEqual(ids(make(50).available(eps, 1)), ['c', 'd']);
  const none = make(undefined);
  none.record('c', S(500), 0);
  none.record('d', S(500), 0);
  assert.deepEqual(none.available(eps, 1), [], 'default 0: all ejected means no healthy upstream');
});

test('endpoint set changes: removed endpoints are forgotten, new ones start healthy', () => {
  const od = new OutlierDetector(policy({ consecutive5xxErrors: 1, maxEjectionPercent: 50 }));
  od.setEndpoints(['a', 'b'], 0);
  od.record('a', S(500), 0);
  assert.equal(od.record('b', S(500), 0)[0]?.type, 'eject-skipped');
  od.setEndpoints(['b', 'c', 'd', 'e'], 1);
  assert.equal(od.record('b', S(500), 2)[0]?.type, 'eject', 'a left, so b fits under 50 % of four');
  od.setEndpoints(['a', 'b', 'c', 'd', 'e'], 3);
  assert.ok(!od.isEjected('a', 3), 'a came back fresh');
  assert.equal(od.health(3).find((h) => h.id === 'a')?.timesEjected, 0);
});

test('configure() applies a new policy and keeps the state', () => {
  const od = new OutlierDetector(policy({ consecutive5xxErrors: 5 }));
  od.setEndpoints(['a', 'b'], 0);
  od.record('a', S(500), 0);
  od.record('a', S(500), 1);
  od.configure(policy({ consecutive5xxErrors: 3 }));
  assert.equal(od.record('a', S(500), 2)[0]?.type, 'eject');
  const h = od.health(3);
  assert.deepEqual(
    h.find((x) => x.id === 'a'),
    { id: 'a', ejected: true, ejectedUntilMs: 30_002, timesEjected: 1, backoff: 1, consecutive5xx: 0, consecutiveGatewayErrors: 0 },
  );
});
