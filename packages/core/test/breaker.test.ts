import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvariantError } from '../src/assert.js';
import { type Breaker, type BreakerPolicy, DEFAULT_BREAKER, admit, newBreaker, onFailure, onSuccess, validBreakerPolicy } from '../src/breaker.js';

const P: BreakerPolicy = { failureThreshold: 3, successThreshold: 2, timeoutMs: 1000, halfOpenMaxCalls: 1 };

/** Admits one call at `nowMs` and reports its outcome at once. */
function call(b: Breaker, nowMs: number, ok: boolean, p = P): { b: Breaker; allowed: boolean } {
  const a = admit(p, b, nowMs);
  if (!a.allowed) return { b: a.breaker, allowed: false };
  return { b: ok ? onSuccess(p, a.breaker, a.generation) : onFailure(p, a.breaker, nowMs, a.generation), allowed: true };
}

function failTimes(b: Breaker, n: number, nowMs: number): Breaker {
  for (let i = 0; i < n; i++) b = call(b, nowMs, false).b;
  return b;
}

test('CLOSED → OPEN after failureThreshold consecutive failures, not before', () => {
  let b = failTimes(newBreaker(), 2, 0);
  assert.equal(b.state, 'CLOSED');
  assert.equal(b.failures, 2);
  b = failTimes(b, 1, 10);
  assert.equal(b.state, 'OPEN');
  assert.equal(b.openedAtMs, 10);
});

test('a success while CLOSED resets the failure count (failures must be consecutive)', () => {
  let b = failTimes(newBreaker(), 2, 0);
  b = call(b, 0, true).b;
  assert.equal(b.failures, 0);
  b = failTimes(b, 2, 0);
  assert.equal(b.state, 'CLOSED');
});

test('OPEN refuses every call until timeoutMs has passed, then half-opens', () => {
  let b = failTimes(newBreaker(), 3, 100);
  for (const t of [100, 500, 1099]) {
    const a = admit(P, b, t);
    assert.equal(a.allowed, false, `t=${t}`);
    b = a.breaker;
  }
  assert.equal(b.state, 'OPEN');
  const a = admit(P, b, 1100);
  assert.equal(a.allowed, true);
  assert.equal(a.breaker.state, 'HALF_OPEN');
});

test('HALF_OPEN admits at most halfOpenMaxCalls trials at once', () => {
  const b = failTimes(newBreaker(), 3, 0);
  const first = admit(P, b, 1000);
  assert.equal(first.allowed, true);
  const second = admit(P, first.breaker, 1001);
  assert.equal(second.allowed, false);
  const wide = { ...P, halfOpenMaxCalls: 2 };
  const w1 = admit(wide, b, 1000);
  const w2 = admit(wide, w1.breaker, 1000);
  const w3 = admit(wide, w2.breaker, 1000);
  assert.deepEqual([w1.allowed, w2.allowed, w3.allowed], [true, true, false]);
});

test('HALF_OPEN → CLOSED after successThreshold successful trials', () => {
  let b = failTimes(newBreaker(), 3, 0);
  let r = call(b, 1000, true);
  assert.equal(r.b.state, 'HALF_OPEN');
  assert.equal(r.b.successes, 1);
  r = call(r.b, 1001, true);
  b = r.b;
  assert.equal(b.state, 'CLOSED');
  assert.equal(b.failures, 0);
  // Closed again means a fresh count: it takes the full threshold to open it.
  assert.equal(failTimes(b, 2, 1002).state, 'CLOSED');
});

test('a failure in HALF_OPEN → OPEN again, with a fresh timeout', () => {
  let b = failTimes(newBreaker(), 3, 0);
  b = call(b, 1000, true).b; // one good trial
  b = call(b, 1500, false).b; // then a bad one
  assert.equal(b.state, 'OPEN');
  assert.equal(b.openedAtMs, 1500);
  assert.equal(admit(P, b, 2499).allowed, false);
  assert.equal(admit(P, b, 2500).allowed, true);
});

test('an outcome from an earlier state is ignored: a slow CLOSED-era call cannot close a HALF_OPEN breaker', () => {
  let b = newBreaker();
  const slow = admit(P, b, 0); // admitted while CLOSED, answers much later
  b = slow.breaker;
  b = failTimes(b, 3, 10); // opens
  const trial = admit(P, b, 1010); // half-open trial in flight
  b = trial.breaker;
  b = onSuccess(P, b, slow.generation);
  b = onSuccess(P, b, slow.generation);
  assert.equal(b.state, 'HALF_OPEN', 'stale successes do not count as trials');
  assert.equal(b.successes, 0);
  b = onFailure(P, b, 1020, slow.generation);
  assert.equal(b.state, 'HALF_OPEN', 'a stale failure does not re-open it either');
  b = onFailure(P, b, 1030, trial.generation);
  assert.equal(b.state, 'OPEN', "the trial's own failure does");
});

test('a stale failure arriving after the breaker re-closed does not count against the new CLOSED period', () => {
  let b = newBreaker();
  const slow = admit(P, b, 0);
  b = failTimes(slow.breaker, 3, 0);
  b = call(b, 1000, true).b;
  b = call(b, 1000, true).b;
  assert.equal(b.state, 'CLOSED');
  b = onFailure(P, b, 1100, slow.generation);
  assert.equal(b.failures, 0);
});

test('a trial that never reports back does not wedge HALF_OPEN: another is admitted after timeoutMs', () => {
  const b = failTimes(newBreaker(), 3, 0);
  const lost = admit(P, b, 1000);
  assert.equal(admit(P, lost.breaker, 1999).allowed, false);
  const next = admit(P, lost.breaker, 2000);
  assert.equal(next.allowed, true);
  assert.equal(onSuccess(P, onSuccess(P, next.breaker, next.generation), next.generation).state, 'CLOSED');
});

test('outcomes reported without a generation apply to the current state (the guide’s usage)', () => {
  let b = newBreaker();
  for (let i = 0; i < 3; i++) b = onFailure(P, admit(P, b, 0).breaker, 0);
  assert.equal(b.state, 'OPEN');
  b = admit(P, b, 1000).breaker;
  b = onSuccess(P, onSuccess(P, b));
  assert.equal(b.state, 'CLOSED');
});

test('invariants hold over a long seeded random run', () => {
  let seed = 99;
  const rnd = () => {
    seed = (seed * 48_271) % 2_147_483_647;
    return seed / 2_147_483_647;
  };
  const policies = [P, DEFAULT_BREAKER, { failureThreshold: 1, successThreshold: 1, timeoutMs: 0, halfOpenMaxCalls: 3 }];
  for (const p of policies) {
    let b = newBreaker();
    let t = 0;
    const pending: Array<{ generation: number; ok: boolean }> = [];
    for (let i = 0; i < 50_000; i++) {
      t += Math.floor(rnd() * 50);
      if (rnd() < 0.6 || pending.length === 0) {
        const before = b;
        const a = admit(p, b, t);
        if (before.state === 'OPEN' && t - before.openedAtMs < p.timeoutMs) assert.equal(a.allowed, false, 'OPEN never admits before its timeout');
        b = a.breaker;
        if (a.allowed) pending.push({ generation: a.generation, ok: rnd() < 0.5 });
      } else {
        const j = Math.floor(rnd() * pending.length);
        const [o] = pending.splice(j, 1);
        const before = b;
        b = o!.ok ? onSuccess(p, b, o!.generation) : onFailure(p, b, t, o!.generation);
        if (before.state === 'CLOSED' && b.state === 'OPEN') assert.equal(before.failures + 1, p.failureThreshold);
        if (before.state === 'HALF_OPEN' && b.state === 'CLOSED') assert.equal(before.successes + 1, p.successThreshold);
        if (before.state === 'OPEN') assert.equal(b.state, 'OPEN', 'only admit leaves OPEN');
      }
      assert.ok(['CLOSED', 'OPEN', 'HALF_OPEN'].includes(b.state));
      assert.ok(b.inFlightTrials <= p.halfOpenMaxCalls);
      assert.ok(b.failures <= p.failureThreshold);
      assert.ok(b.successes < p.successThreshold);
      if (b.state !== 'HALF_OPEN') assert.equal(b.inFlightTrials, 0);
      if (pending.length > 1000) pending.splice(0, 500);
    }
  }
});

test('bad policies are programming errors', () => {
  assert.throws(() => validBreakerPolicy({ ...P, failureThreshold: 0 }), InvariantError);
  assert.throws(() => validBreakerPolicy({ ...P, successThreshold: 1.5 }), InvariantError);
  assert.throws(() => validBreakerPolicy({ ...P, halfOpenMaxCalls: 0 }), InvariantError);
  assert.throws(() => validBreakerPolicy({ ...P, timeoutMs: -1 }), InvariantError);
});
