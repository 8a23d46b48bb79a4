/**
 * Bounded exponential backoff with "full jitter" (AWS architecture blog): the delay before
 * attempt n (n >= 1) is uniform in [0, min(capMs, baseMs * 2^(n-1))]. Randomness is injected.
 */
export interface BackoffPolicy {
  baseMs: number;
  capMs: number;
  /** When true the delay is uniform in [d/2, d] instead of [0, d], so it never collapses to 0. */
  equalJitter?: boolean;
}

export function backoffDelayMs(policy: BackoffPolicy, attempt: number, random: () => number): number {
  if (!(attempt >= 1)) throw new RangeError(`attempt must be >= 1, got ${attempt}`);
  const exp = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(attempt - 1, 30));
  const r = random();
  return policy.equalJitter ? exp / 2 + (r * exp) / 2 : r * exp;
}
