/** The audit reads through the rate-limited admin API: it waits as told instead of failing. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { retryAfterMs } from '../src/audit/audit.js';

test('429 and 503 are asked again after Retry-After (bounded); other answers are final', () => {
  assert.equal(retryAfterMs(429, '1'), 1000);
  assert.equal(retryAfterMs(503, '2'), 2000);
  assert.equal(retryAfterMs(429, null), 1000, 'no header: a second');
  assert.equal(retryAfterMs(429, 'soon'), 1000, 'an unreadable header: a second');
  assert.equal(retryAfterMs(429, '0'), 100, 'never a busy loop');
  assert.equal(retryAfterMs(429, '3600'), 10_000, 'never longer than 10 s at a time');
  for (const status of [200, 400, 401, 404, 500, 502]) assert.equal(retryAfterMs(status, '1'), null, String(status));
});
