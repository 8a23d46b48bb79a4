/**
 * Rate limiting with token buckets, per user (authenticated groups) or per client IP. Buckets
 * live in memory (bounded) or in Redis, so several gateway instances share one limit. When
 * Redis cannot be reached, each gateway falls back to its own in-memory buckets (limits stay
 * on, per instance) rather than letting everything through or refusing everything.
 */
import { type BucketPolicy, type BucketState, type Decision, fullBucket, take } from '@concord/core';
import type { Redis } from 'ioredis';

/**
 * The time of the current event-loop iteration, like nginx's cached clock: every request the
 * gateway takes from one batch of readable sockets is decided at the same instant. Without it a
 * burst that arrived at once would be spread over however long the gateway takes to work
 * through it, and the bucket would refill in between — so the share of a burst that passes
 * would depend on how busy the machine is rather than on the limit.
 */
export class LoopClock {
  private cachedMs = 0;
  private fresh = false;
  private readonly expire = () => {
    this.fresh = false;
  };

  constructor(private readonly clock: () => number = Date.now) {}

  now(): number {
    if (!this.fresh) {
      this.cachedMs = this.clock();
      this.fresh = true;
      setImmediate(this.expire);
    }
    return this.cachedMs;
  }
}

export interface RateLimiter {
  take(key: string, policy: BucketPolicy, nowMs: number): Promise<Decision>;
  close(): Promise<void>;
}

const MAX_BUCKETS = 100_000;
/** A bucket moves to the young end of the eviction order at most this often. */
const REORDER_EVERY_MS = 1000;

interface Slot {
  state: BucketState;
  /** When the slot last moved to the young end of the map. */
  movedMs: number;
}

export class MemoryRateLimiter implements RateLimiter {
  /** Insertion order is (roughly) recency order: the first entry is evicted first. */
  private readonly buckets = new Map<string, Slot>();

  constructor(private readonly maxBuckets = MAX_BUCKETS) {}

  get size(): number {
    return this.buckets.size;
  }

  /**
   * Synchronous: the hot path pays no promise for an in-memory decision. Buckets are updated in
   * place; a busy key is moved to the young end at most once per REORDER_EVERY_MS (deleting and
   * re-inserting on every request churns the Map), so eviction is least-recently-used to within
   * that second. An evicted client gets a full bucket back, never less.
   */
  takeNow(key: string, policy: BucketPolicy, nowMs: number): Decision {
    const slot = this.buckets.get(key);
    if (slot) {
      const r = take(policy, slot.state, nowMs);
      slot.state = r.state;
      if (nowMs - slot.movedMs >= REORDER_EVERY_MS) {
        this.buckets.delete(key);
        this.buckets.set(key, slot);
        slot.movedMs = nowMs;
      }
      return r.decision;
    }
    if (this.buckets.size >= this.maxBuckets) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
    const r = take(policy, fullBucket(policy, nowMs), nowMs);
    this.buckets.set(key, { state: r.state, movedMs: nowMs });
    return r.decision;
  }

  async take(key: string, policy: BucketPolicy, nowMs: number): Promise<Decision> {
    return this.takeNow(key, policy, nowMs);
  }

  async close(): Promise<void> {}
}

/**
 * The same token bucket as core/token-bucket, evaluated atomically in Redis (one round trip).
 * The time is the deciding gateway's loop clock (see LoopClock), so a burst is judged by when it
 * arrived, not by when Redis got to it. Like the core, the bucket's time never moves backwards:
 * a gateway whose clock runs δ ahead of the others credits at most δ·rate tokens, once.
 */
const SCRIPT = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil or ts == nil then tokens = burst; ts = now end
if now < ts then now = ts end
tokens = math.min(burst, tokens + (now - ts) / 1000 * rate)
local allowed = 0
if tokens >= 1 then tokens = tokens - 1; allowed = 1 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
`;

type WithTake = { concordTake(key: string, ratePerS: number, burst: number, nowMs: number): Promise<[number, string]> };

export class RedisRateLimiter implements RateLimiter {
  constructor(
    private readonly redis: Redis,
    private readonly prefix = 'concord:rl:',
  ) {
    redis.defineCommand('concordTake', { numberOfKeys: 1, lua: SCRIPT });
  }

  async take(key: string, policy: BucketPolicy, nowMs: number): Promise<Decision> {
    const [allowed, tokensText] = await (this.redis as unknown as WithTake).concordTake(this.prefix + key, policy.ratePerS, policy.burst, Math.floor(nowMs));
    const left = Number(tokensText);
    if (!Number.isFinite(left)) throw new Error(`the rate-limit script answered ${JSON.stringify(tokensText)}`);
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

/**
 * Uses `primary` (Redis) while it answers, `fallback` (memory) while it does not. `onFallback`
 * is told about the failure at most once per `reportEveryMs`, so an outage does not flood logs.
 */
export class FailoverRateLimiter implements RateLimiter {
  private lastReportMs = Number.NEGATIVE_INFINITY;
  failovers = 0;

  constructor(
    private readonly primary: RateLimiter,
    private readonly fallback: RateLimiter,
    private readonly onFallback: (err: unknown, failovers: number) => void,
    private readonly reportEveryMs = 10_000,
  ) {}

  async take(key: string, policy: BucketPolicy, nowMs: number): Promise<Decision> {
    try {
      return await this.primary.take(key, policy, nowMs);
    } catch (err) {
      this.failovers++;
      if (nowMs - this.lastReportMs >= this.reportEveryMs) {
        this.lastReportMs = nowMs;
        this.onFallback(err, this.failovers);
      }
      return this.fallback.take(key, policy, nowMs);
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.primary.close(), this.fallback.close()]);
  }
}

/** IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers, RateLimit-* form). */
export function rateLimitHeaders(policy: BucketPolicy, d: Decision): Record<string, string> {
  const h: Record<string, string> = {
    'ratelimit-limit': String(policy.burst),
    'ratelimit-remaining': String(Math.max(0, d.remaining)),
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
    const n = Number(m[2]);
    if (n > 1_000_000) return { ok: false };
    out[m[1] as string] = n;
  }
  return { ok: true, value: out };
}
