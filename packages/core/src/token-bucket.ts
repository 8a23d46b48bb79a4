/**
 * Token bucket: `ratePerS` tokens per second, holding at most `burst`. Pure: the caller passes
 * the time, and gets back whether the request may pass plus what the RateLimit headers need.
 */
import { invariant } from './assert.js';

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
  /** Seconds until the request could pass (0 when allowed; at least 1 when refused). */
  retryAfterS: number;
  /** Seconds until the bucket is full again. */
  resetS: number;
}

export function validBucketPolicy(policy: BucketPolicy): BucketPolicy {
  invariant(Number.isFinite(policy.ratePerS) && policy.ratePerS > 0, `ratePerS must be > 0, got ${policy.ratePerS}`);
  invariant(Number.isFinite(policy.burst) && policy.burst >= 1, `burst must be ≥ 1, got ${policy.burst}`);
  return policy;
}

export function fullBucket(policy: BucketPolicy, nowMs: number): BucketState {
  return { tokens: policy.burst, updatedMs: nowMs };
}

/**
 * Takes `cost` tokens if there are that many. A clock that steps backwards refills nothing and
 * does not move the bucket's time back (so the same interval is never credited twice).
 */
export function take(policy: BucketPolicy, state: BucketState, nowMs: number, cost = 1): { state: BucketState; decision: Decision } {
  invariant(cost >= 0 && cost <= policy.burst, `cost ${cost} must be between 0 and the burst ${policy.burst}`);
  const updatedMs = Math.max(state.updatedMs, nowMs);
  const elapsedS = (updatedMs - state.updatedMs) / 1000;
  const tokens = Math.min(policy.burst, state.tokens + elapsedS * policy.ratePerS);
  const allowed = tokens >= cost;
  const left = allowed ? tokens - cost : tokens;
  return {
    state: { tokens: left, updatedMs },
    decision: {
      allowed,
      remaining: Math.floor(left),
      retryAfterS: allowed ? 0 : Math.max(1, Math.ceil((cost - left) / policy.ratePerS)),
      resetS: Math.ceil((policy.burst - left) / policy.ratePerS),
    },
  };
}
