import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decideFault, NO_FAULT } from '../src/mesh/fault.js';
import { assertShare, mulberry32 } from './mesh-helpers.js';

test('no fault configured: no delay, no abort, no draw', () => {
  let draws = 0;
  const counting = () => {
    draws++;
    return 0;
  };
  assert.equal(decideFault(undefined, counting), NO_FAULT);
  assert.deepEqual(decideFault({}, counting), { delayMs: 0, abortStatus: null });
  assert.equal(draws, 0);
});

test('100 % faults always apply; delay and abort can both hit one attempt', () => {
  const r = mulberry32(1);
  assert.deepEqual(decideFault({ delay: { fixedDelayMs: 7000, percentage: 100 } }, r), { delayMs: 7000, abortStatus: null });
  assert.deepEqual(decideFault({ abort: { httpStatus: 500, percentage: 100 } }, r), { delayMs: 0, abortStatus: 500 });
  assert.deepEqual(decideFault({ delay: { fixedDelayMs: 5, percentage: 100 }, abort: { httpStatus: 503, percentage: 100 } }, r), {
    delayMs: 5,
    abortStatus: 503,
  });
  assert.deepEqual(decideFault({ delay: { fixedDelayMs: 5, percentage: 0 }, abort: { httpStatus: 503, percentage: 0 } }, r), NO_FAULT);
});

test('fault delay and abort percentages land within ±3 % over 2,000 calls, independently', () => {
  for (const seed of [3, 17, 99]) {
    const r = mulberry32(seed);
    let delayed = 0;
    let aborted = 0;
    let both = 0;
    for (let i = 0; i < 2000; i++) {
      const f = decideFault({ delay: { fixedDelayMs: 100, percentage: 30 }, abort: { httpStatus: 503, percentage: 10 } }, r);
      if (f.delayMs > 0) delayed++;
      if (f.abortStatus !== null) aborted++;
      if (f.delayMs > 0 && f.abortStatus !== null) both++;
    }
    assertShare(delayed, 2000, 30, 3, `seed ${seed} delay`);
    assertShare(aborted, 2000, 10, 3, `seed ${seed} abort`);
    assertShare(both, 2000, 3, 1.5, `seed ${seed} delay and abort (30 % × 10 %)`);
  }
});

test('fractional percentages and defensive reading of bad values', () => {
  const r = mulberry32(8);
  let n = 0;
  for (let i = 0; i < 20000; i++) if (decideFault({ abort: { httpStatus: 500, percentage: 0.5 } }, r).abortStatus) n++;
  assertShare(n, 20000, 0.5, 0.2, 'abort at 0.5 %');
  assert.equal(decideFault({ abort: { httpStatus: 999, percentage: 100 } }, r), NO_FAULT);
  assert.equal(decideFault({ abort: { httpStatus: 99.5, percentage: 100 } }, r), NO_FAULT);
  assert.equal(decideFault({ delay: { fixedDelayMs: -5, percentage: 100 } }, r), NO_FAULT);
  assert.equal(decideFault({ delay: { fixedDelayMs: Number.NaN, percentage: 100 } }, r), NO_FAULT);
  assert.equal(decideFault({ delay: { fixedDelayMs: 5, percentage: Number.NaN } }, r), NO_FAULT);
});
