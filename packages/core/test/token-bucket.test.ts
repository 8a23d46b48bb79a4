import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvariantError } from '../src/assert.js';
import { type BucketPolicy, type BucketState, fullBucket, take, validBucketPolicy } from '../src/token-bucket.js';

const P: BucketPolicy = { ratePerS: 10, burst: 10 };

/** Takes `n` tokens at `nowMs`; returns how many were allowed and the final state. */
function burst(policy: BucketPolicy, state: BucketState, nowMs: number, n: number): { allowed: number; state: BucketState } {
  let allowed = 0;
  for (let i = 0; i < n; i++) {
    const r = take(policy, state, nowMs);
    state = r.state;
    if (r.decision.allowed) allowed++;
  }
  return { allowed, state };
}

test('a full bucket lets exactly `burst` requests through at one instant, then refuses', () => {
  const r = burst(P, fullBucket(P, 0), 0, 20);
  assert.equal(r.allowed, 10);
  const refused = take(P, r.state, 0);
  assert.equal(refused.decision.allowed, false);
  assert.equal(refused.decision.remaining, 0);
});

test('remaining counts down; a refusal carries Retry-After ≥ 1 s and the time to full', () => {
  let s = fullBucket(P, 0);
  const seen: number[] = [];
  for (let i = 0; i < 10; i++) {
    const r = take(P, s, 0);
    s = r.state;
    assert.equal(r.decision.allowed, true);
    assert.equal(r.decision.retryAfterS, 0);
    seen.push(r.decision.remaining);
  }
  assert.deepEqual(seen, [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
  const no = take(P, s, 0).decision;
  assert.equal(no.allowed, false);
  assert.equal(no.retryAfterS, 1);
  assert.equal(no.resetS, 1);
  // A slow bucket: 1 token per 10 s → retry after 10 s.
  const slow = { ratePerS: 0.1, burst: 1 };
  const empty = take(slow, fullBucket(slow, 0), 0).state;
  assert.equal(take(slow, empty, 0).decision.retryAfterS, 10);
});

test('tokens refill at ratePerS: one more request per 1/rate seconds', () => {
  let s = burst(P, fullBucket(P, 0), 0, 10).state;
  assert.equal(take(P, s, 99).decision.allowed, false);
  const r = take(P, s, 100);
  assert.equal(r.decision.allowed, true);
  s = r.state;
  assert.equal(take(P, s, 100).decision.allowed, false);
  assert.equal(burst(P, s, 600, 100).allowed, 5);
});

test('a long idle period never fills the bucket beyond burst', () => {
  const s = burst(P, fullBucket(P, 0), 0, 10).state;
  assert.equal(burst(P, s, 3_600_000, 100).allowed, 10);
});

test('a clock stepping backwards credits nothing, and the same interval is never credited twice', () => {
  let s = burst(P, fullBucket(P, 0), 1000, 10).state; // empty at t=1000
  const back = take(P, s, 500);
  assert.equal(back.decision.allowed, false);
  s = back.state;
  assert.equal(s.updatedMs, 1000, 'the bucket keeps its latest time');
  // Back at t=1000: no time has passed since the bucket was emptied.
  assert.equal(take(P, s, 1000).decision.allowed, false);
  assert.equal(burst(P, s, 1100, 5).allowed, 1);
});

test('over any window of T seconds at most burst + rate·T requests pass (seeded random arrivals)', () => {
  let seed = 12345;
  const rnd = () => {
    seed = (seed * 48_271) % 2_147_483_647;
    return seed / 2_147_483_647;
  };
  for (const policy of [P, { ratePerS: 50, burst: 50 }, { ratePerS: 3, burst: 7 }, { ratePerS: 1000, burst: 100 }]) {
    let s = fullBucket(policy, 0);
    const accepted: number[] = [];
    let t = 0;
    for (let i = 0; i < 20_000; i++) {
      t += Math.floor(rnd() * 20); // bursts and gaps, ms resolution
      const r = take(policy, s, t);
      s = r.state;
      if (r.decision.allowed) accepted.push(t);
    }
    // Sliding windows starting at every accepted request (two pointers per window size).
    for (const windowMs of [1, 250, 1000, 5000]) {
      let j = 0;
      for (let i = 0; i < accepted.length; i++) {
        if (j < i) j = i;
        while (j < accepted.length && accepted[j]! < accepted[i]! + windowMs) j++;
        const inWindow = j - i;
        assert.ok(inWindow <= policy.burst + (policy.ratePerS * windowMs) / 1000 + 1e-9, `${inWindow} in ${windowMs} ms for ${JSON.stringify(policy)}`);
      }
    }
  }
});

test('a burst of twice the limit inside one second: the limit plus what refilled meanwhile', () => {
  const limit = { ratePerS: 100, burst: 100 };
  // 200 requests spread over 20 ms: 100 + 100 · 0.02 = 102 pass.
  let s = fullBucket(limit, 0);
  let allowed = 0;
  for (let i = 0; i < 200; i++) {
    const r = take(limit, s, Math.floor((i * 20) / 200));
    s = r.state;
    if (r.decision.allowed) allowed++;
  }
  assert.ok(allowed >= 100 && allowed <= 102, String(allowed));
});

test('bad policies and costs are programming errors', () => {
  assert.throws(() => validBucketPolicy({ ratePerS: 0, burst: 1 }), InvariantError);
  assert.throws(() => validBucketPolicy({ ratePerS: 1, burst: 0.5 }), InvariantError);
  assert.throws(() => validBucketPolicy({ ratePerS: Number.NaN, burst: 1 }), InvariantError);
  assert.throws(() => take(P, fullBucket(P, 0), 0, 11), InvariantError);
  assert.equal(validBucketPolicy(P), P);
});

test('a cost above 1 takes that many tokens', () => {
  const r = take(P, fullBucket(P, 0), 0, 4);
  assert.equal(r.decision.remaining, 6);
  const r2 = take(P, r.state, 0, 7);
  assert.equal(r2.decision.allowed, false);
  assert.equal(r2.decision.retryAfterS, 1);
});
