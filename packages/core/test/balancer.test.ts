import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomPicker, roundRobinPicker } from '../src/balancer.js';

test('round robin cycles through endpoints in order and survives list changes', () => {
  const rr = roundRobinPicker<string>();
  assert.deepEqual([1, 2, 3, 4].map(() => rr.pick(['a', 'b', 'c'])), ['a', 'b', 'c', 'a']);
  assert.equal(rr.pick(['x']), 'x');
  assert.equal(rr.pick([]), undefined);
});

test('random picker uses the injected randomness', () => {
  const values = [0, 0.5, 0.99];
  const r = randomPicker<string>(() => values.shift() ?? 0);
  assert.deepEqual([r.pick(['a', 'b']), r.pick(['a', 'b']), r.pick(['a', 'b'])], ['a', 'b', 'b']);
  assert.equal(r.pick([]), undefined);
});
