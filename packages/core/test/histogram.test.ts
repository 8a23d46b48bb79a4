import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Histogram } from '../src/histogram.js';

test('small values are exact; quantiles of a uniform 1..10000 are within 1 %', () => {
  const h = new Histogram();
  for (let v = 1; v <= 10_000; v++) h.record(v);
  assert.equal(h.count, 10_000);
  for (const [q, expected] of [[0.5, 5000], [0.9, 9000], [0.99, 9900], [0.999, 9990]] as const) {
    const got = h.quantile(q);
    assert.ok(got >= expected && got <= expected * 1.01, `q${q}: ${got} vs ${expected}`);
  }
  assert.equal(h.quantile(1), 10_000);
  const small = new Histogram();
  for (const v of [3, 3, 7, 100]) small.record(v);
  assert.equal(small.quantile(0.5), 3);
  assert.equal(small.quantile(0.75), 7);
});

test('quantiles never understate; merge adds; extreme values stay bounded', () => {
  const a = new Histogram();
  const b = new Histogram();
  a.record(1_000_000);
  b.record(2_000_000);
  a.merge(b);
  assert.equal(a.count, 2);
  assert.ok(a.quantile(0.5) >= 1_000_000 && a.quantile(0.5) <= 1_010_000);
  a.record(2 ** 60);
  assert.equal(a.max, 2 ** 60);
  a.record(-1);
  a.record(Number.NaN);
  assert.equal(a.count, 3, 'invalid samples are ignored');
});
