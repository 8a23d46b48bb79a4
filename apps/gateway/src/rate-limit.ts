/**
 * Rate limiting with token buckets, per user (authenticated groups) or per client IP. Buckets
 * live in memory (bounded) or in Redis, so several gateway instances share one limit.
 */
import { type BucketPolicy, type BucketState, type Decision, fullBucket, take } from '@concord/core';
import type { Redis } from 'ioredis';

export interface RateLimiter {
  take(key: string, policy: BucketPolicy, nowMs: number): Promise<Decision>;
  close(): Promise<void>;
}

const MAX_BUCKETS = 100_000;

export class MemoryRateLimiter implements RateLimiter {
  private readonly buckets = new Map<string, BucketState>();

  async take(key: string, policy: BucketPolicy, nowMs: number): Promise<Decision> {
    const state = this.buckets.get(key) ?? fullBucket(policy, nowMs);
    const r = take(policy, state, nowMs);
    // Re-insert to keep the most recently used at the end; evict the least recent when full.
    this.buckets.delete(key);
    if (this.buckets.size >= MAX_BUCKETS) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
    this.buckets.set(key, r.state);
    return r.decision;
  }

  async close(): Promise<void> {}
}

/**
 * The same token bucket as core/token-bucket, evaluated atomically in Redis (one round trip).
 * Time comes from the Redis server, so gateways with skewed clocks still agree.
 */
const SCRIPT = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil then tokens = burst; ts = now end
local elapsed = math.max(0, now - ts) / 1000
tokens = math.min(burst, tokens + elapsed * rate)
local allowed = 0
if tokens >= 1 then tokens = tokens - 1; allowed = 1 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
`;

export class RedisRateLimiter implements RateLimiter {
  constructor(
    private readonly redis: Redis,
    private readonly prefix = 'concord:rl:',
  ) {
    redis.defineCommand('concordTake', { numberOfKeys: 1, lua: SCRIPT });
  }

  async take(key: string, policy: BucketPolicy): Promise<Decision> {
    const [allowed, tokensText] = (await (this.redis as unknown as { concordTake(k: string, r: number, b: number): Promise<[number, string]> }).concordTake(
      this.prefix + key,
      policy.ratePerS,
      policy.burst,
    )) as [number, string];
    const left = Number(tokensText);
    const ok = allowed === 1;
    return {
      allowed: ok,
      remaining: Math.floor(left),
      retryAfterS: ok ? 0 : Math.max(1, Math.ceil((1 - left) / policy.ratePerS)),
      resetS: Math.ceil((policy.burst - left) / policy.ratePerS),
    };
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

export function rateLimitHeaders(policy: BucketPolicy, d: Decision): Record<string, string> {
  const h: Record<string, string> = {
    'ratelimit-limit': String(policy.burst),
    'ratelimit-remaining': String(d.remaining),
    'ratelimit-reset': String(d.resetS),
    'ratelimit-policy': `${policy.burst};w=${Math.max(1, Math.round(policy.burst / policy.ratePerS))}`,
  };
  if (!d.allowed) h['retry-after'] = String(d.retryAfterS);
  return h;
}

/** `auth=10,public=200` → overrides per group (requests per second). */
export function parseGroupLimits(spec: string): { ok: true; value: Record<string, number> } | { ok: false } {
  const out: Record<string, number> = {};
  if (spec.trim() === '') return { ok: true, value: out };
  for (const part of spec.split(',')) {
    const m = /^\s*(auth|public|user|admin)\s*=\s*(\d{1,7})\s*$/.exec(part);
    if (!m) return { ok: false };
    out[m[1] as string] = Number(m[2]);
  }
  return { ok: true, value: out };
}
