import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelayMs } from '../src/backoff.js';

test('backoff grows exponentially and never exceeds its cap', () => {
  const p = { baseMs: 100, capMs: 1000 };
  assert.equal(backoffDelayMs(p, 1, () => 1), 100);
  assert.equal(backoffDelayMs(p, 2, () => 1), 200);
  assert.equal(backoffDelayMs(p, 4, () => 1), 800);
  assert.equal(backoffDelayMs(p, 5, () => 1), 1000);
  assert.equal(backoffDelayMs(p, 500, () => 1), 1000);
});

test('full jitter spans [0, d]; equal jitter spans [d/2, d]', () => {
  assert.equal(backoffDelayMs({ baseMs: 100, capMs: 1000 }, 3, () => 0), 0);
  assert.equal(backoffDelayMs({ baseMs: 100, capMs: 1000, equalJitter: true }, 3, () => 0), 200);
  assert.equal(backoffDelayMs({ baseMs: 100, capMs: 1000, equalJitter: true }, 3, () => 1), 400);
});

test('backoff rejects an attempt below 1', () => {
  assert.throws(() => backoffDelayMs({ baseMs: 1, capMs: 2 }, 0, Math.random), RangeError);
});
