/**
 * A seeded source of uniform numbers in [0, 1): mulberry32 (Tommy Ettinger's 32-bit generator).
 * The core takes its randomness injected (balancers, backoff jitter, ids); this is the source to
 * inject where a run must repeat: the same seed gives the same sequence. Not for secrets.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
