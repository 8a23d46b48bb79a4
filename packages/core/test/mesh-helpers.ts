/**
 * Test helpers for the mesh core: a seeded PRNG (mulberry32, Tommy Ettinger's 32-bit generator)
 * so statistical tests are deterministic, and small assertion helpers.
 */
import assert from 'node:assert/strict';

/** A uniform [0, 1) generator from a 32-bit seed; same seed, same sequence. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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
