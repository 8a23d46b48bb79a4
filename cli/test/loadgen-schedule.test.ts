/** The open model's arrival schedule: orders are due at k / rate from the start, the first at once. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dueByMs, intendedOffsetMs } from '../src/bench/loadgen.js';

test('the first order is due at the start, not one interval later (which would add 1/rate to every latency)', () => {
  assert.equal(dueByMs(0, 5), 1);
  assert.equal(intendedOffsetMs(0, 5), 0);
  assert.equal(dueByMs(199, 5), 1, 'the second order of 5/s is due at 200 ms');
  assert.equal(dueByMs(200, 5), 2);
  assert.equal(intendedOffsetMs(1, 5), 200);
  assert.equal(dueByMs(-1, 5), 0);
});

test('an order is never issued before the time latency is measured from', () => {
  for (const rate of [1, 3, 7, 200, 2500]) {
    for (let ms = 0; ms < 3000; ms += 0.37) {
      const due = dueByMs(ms, rate);
      assert.ok(intendedOffsetMs(due - 1, rate) <= ms, `rate ${rate}: order ${due - 1} due by ${ms} ms`);
      assert.ok(intendedOffsetMs(due, rate) > ms, `rate ${rate}: order ${due} not yet due at ${ms} ms`);
    }
  }
});
