import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDuration } from '../src/duration.js';

test('parseDuration accepts Go-style durations used by Consul and Istio', () => {
  assert.deepEqual(parseDuration('10s'), { ok: true, ms: 10_000 });
  assert.deepEqual(parseDuration('250ms'), { ok: true, ms: 250 });
  assert.deepEqual(parseDuration('1m30s'), { ok: true, ms: 90_000 });
  assert.deepEqual(parseDuration('1.5h'), { ok: true, ms: 5_400_000 });
  assert.deepEqual(parseDuration('0'), { ok: true, ms: 0 });
  assert.deepEqual(parseDuration('500us'), { ok: true, ms: 0.5 });
});

test('parseDuration refuses anything that is not a duration, with a hint', () => {
  for (const bad of ['10x', '', 's', '10', '-1s', '1 s', 'abc', 10, null, '9'.repeat(100) + 's']) {
    const r = parseDuration(bad);
    assert.equal(r.ok, false, `expected ${JSON.stringify(bad)} to be refused`);
    if (!r.ok) assert.match(r.error, /duration|too large/);
  }
});
