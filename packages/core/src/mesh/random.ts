/**
 * Injected randomness, used safely. Every random decision in the mesh core takes a
 * `random: () => number` (uniform in [0, 1)), so tests and simulations pass a seeded PRNG and the
 * shell passes `Math.random`.
 *
 * ```ts
 * randomUnit(random): number                    // in [0, 1), even if `random` misbehaves
 * randomChance(random, percent): boolean        // true with probability percent/100 (clamped 0..100)
 * randomIndex(random, n): number                // uniform integer in [0, n)
 * ```
 */

export type Random = () => number;

/** A draw in [0, 1); a source returning 1, a negative number or NaN cannot push callers out of range. */
export function randomUnit(random: Random): number {
  const r = random();
  if (!(r >= 0)) return 0;
  return r < 1 ? r : 1 - Number.EPSILON;
}

/** True with probability `percent`/100. Percent is clamped to 0..100; NaN counts as 0. */
export function randomChance(random: Random, percent: number): boolean {
  if (!(percent > 0)) return false;
  if (percent >= 100) return true;
  return randomUnit(random) * 100 < percent;
}

/** A uniform integer in [0, n), n >= 1. */
export function randomIndex(random: Random, n: number): number {
  return Math.min(n - 1, Math.floor(randomUnit(random) * n));
}
