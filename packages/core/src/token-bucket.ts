/**
 * Token bucket: `ratePerS` tokens per second, holding at most `burst`. Pure: the caller passes
 * the time, and gets back whether the request may pass plus what the RateLimit headers need.
 */
export interface BucketState {
  tokens: number;
  updatedMs: number;
}

export interface BucketPolicy {
  ratePerS: number;
  burst: number;
}

export interface Decision {
  allowed: boolean;
  /** Whole tokens left after this request. */
  remaining: number;
  /** Seconds until one token is available again (0 when allowed). */
  retryAfterS: number;
  /** Seconds until the bucket is full again. */
  resetS: number;
}

export function fullBucket(policy: BucketPolicy, nowMs: number): BucketState {
  return { tokens: policy.burst, updatedMs: nowMs };
}

export function take(policy: BucketPolicy, state: BucketState, nowMs: number, cost = 1): { state: BucketState; decision: Decision } {
  const elapsedS = Math.max(0, nowMs - state.updatedMs) / 1000;
  const tokens = Math.min(policy.burst, state.tokens + elapsedS * policy.ratePerS);
  const allowed = tokens >= cost;
  const left = allowed ? tokens - cost : tokens;
  return {
    state: { tokens: left, updatedMs: nowMs },
    decision: {
      allowed,
      remaining: Math.floor(left),
      retryAfterS: allowed ? 0 : Math.max(1, Math.ceil((cost - left) / policy.ratePerS)),
      resetS: Math.ceil((policy.burst - left) / policy.ratePerS),
    },
  };
}
