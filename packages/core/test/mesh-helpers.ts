/**
 * Test helpers for the mesh core: the core's seeded PRNG (mulberry32) so statistical tests are
 * deterministic, and small assertion helpers.
 */
import assert from 'node:assert/strict';

export { mulberry32 } from '../src/random.js';

/** A source that replays `values` (then repeats the last one). */
export function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)] as number;
}

/** Asserts that `count` out of `total` is within ±`tolerancePct` percentage points of `expectedPct`. */
export function assertShare(count: number, total: number, expectedPct: number, tolerancePct: number, what: string): void {
  const pct = (100 * count) / total;
  assert.ok(Math.abs(pct - expectedPct) <= tolerancePct, `${what}: ${pct.toFixed(2)} % is not within ${expectedPct} ± ${tolerancePct} %`);
}
