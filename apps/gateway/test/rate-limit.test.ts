import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BucketPolicy, Decision } from '@concord/core';
import { FailoverRateLimiter, LoopClock, MemoryRateLimiter, type RateLimiter, parseGroupLimits, rateLimitHeaders } from '../src/rate-limit.js';

const P: BucketPolicy = { ratePerS: 10, burst: 10 };

test('memory buckets are per key', () => {
  const l = new MemoryRateLimiter();
  for (let i = 0; i < 10; i++) assert.equal(l.takeNow('a', P, 0).allowed, true);
  assert.equal(l.takeNow('a', P, 0).allowed, false);
  assert.equal(l.takeNow('b', P, 0).allowed, true);
});

test('memory buckets are bounded: the least recently used is evicted (and comes back full)', () => {
  const l = new MemoryRateLimiter(3);
  for (const k of ['a', 'b', 'c']) for (let i = 0; i < 10; i++) l.takeNow(k, P, 0);
  l.takeNow('a', P, 1000); // a is now the most recent (moved at most once a second)
  l.takeNow('d', P, 1000); // evicts b
  assert.equal(l.size, 3);
  assert.equal(l.takeNow('b', P, 1000).allowed, true, 'b was evicted and starts full');
  for (let i = 0; i < 10; i++) l.takeNow('a', P, 1000);
  assert.equal(l.takeNow('a', P, 1000).allowed, false, 'a was kept, with its state');
});

test('the loop clock gives every decision of one event-loop turn the same time', async () => {
  let t = 1000;
  const clock = new LoopClock(() => t++);
  const first = clock.now();
  assert.equal(clock.now(), first);
  assert.equal(clock.now(), first);
  await new Promise((r) => setImmediate(r));
  assert.notEqual(clock.now(), first, 'a new turn reads the clock again');
});

test('a burst decided within one turn lets exactly the burst through, however long the turn takes', () => {
  let t = 0;
  const clock = new LoopClock(() => (t += 5)); // a slow clock read: 5 ms per call
  const l = new MemoryRateLimiter();
  let allowed = 0;
  for (let i = 0; i < 200; i++) if (l.takeNow('u', { ratePerS: 100, burst: 100 }, clock.now()).allowed) allowed++;
  assert.equal(allowed, 100);
});

test('the failover limiter uses the primary while it answers and the fallback when it throws, reporting at most once per interval', async () => {
  let fail = false;
  const primary: RateLimiter = {
    take: async () => {
      if (fail) throw new Error('redis down');
      return { allowed: false, remaining: 0, retryAfterS: 1, resetS: 1 } satisfies Decision;
    },
    close: async () => {},
  };
  const reports: number[] = [];
  const l = new FailoverRateLimiter(primary, new MemoryRateLimiter(), (_err, n) => reports.push(n), 10_000);
  assert.equal((await l.take('k', P, 0)).allowed, false, 'the primary decides');
  fail = true;
  assert.equal((await l.take('k', P, 1)).allowed, true, 'the fallback decides (its own full bucket)');
  await l.take('k', P, 2);
  await l.take('k', P, 10_001);
  assert.deepEqual(reports, [1, 3]);
});

test('RateLimit-* headers; Retry-After only on a refusal', () => {
  const ok = rateLimitHeaders({ ratePerS: 50, burst: 50 }, { allowed: true, remaining: 49, retryAfterS: 0, resetS: 1 });
  assert.deepEqual(ok, { 'ratelimit-limit': '50', 'ratelimit-remaining': '49', 'ratelimit-reset': '1', 'ratelimit-policy': '50;w=1' });
  const no = rateLimitHeaders({ ratePerS: 50, burst: 50 }, { allowed: false, remaining: 0, retryAfterS: 1, resetS: 1 });
  assert.equal(no['retry-after'], '1');
});

test('group limits: "auth=10,admin=200"; anything else is refused', () => {
  assert.deepEqual(parseGroupLimits('auth=10, admin = 200'), { ok: true, value: { auth: 10, admin: 200 } });
  assert.deepEqual(parseGroupLimits(''), { ok: true, value: {} });
  for (const bad of ['auth', 'auth=', 'auth=-1', 'nobody=3', 'auth=10;admin=2', 'auth=2000000', 'auth=1.5']) assert.deepEqual(parseGroupLimits(bad), { ok: false }, bad);
});
