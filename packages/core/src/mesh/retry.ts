/**
 * Whether to retry an attempt, and after how long. Pure: randomness and the remaining deadline
 * come in as arguments.
 *
 * ```ts
 * const policy = resolveRetryPolicy(route.retries);      // once per route (config push)
 * decideRetry(policy, attempt, outcome, remainingMs, random)
 *   // → { retry: true, delayMs, retryNumber } | { retry: false, reason }
 * isRetriable(policy, outcome)                            // the retryOn table alone
 * retryBackoffMs(retryNumber, random, baseMs?, maxMs?)    // Envoy's jittered back-off
 * ```
 *
 * `attempt` counts the tries made so far (1 after the first). Istio's `attempts` is the number of
 * RETRIES ("Number of retries to be allowed for a given request"), so `attempts: 3` allows up to
 * 4 tries. The shell asks before every retry and then:
 * - takes a retry slot from the destination's pool (`beginRetry`, pool.ts; the maxRetries breaker);
 * - waits `delayMs`, then picks an endpoint with `exclude` = the endpoints already tried
 *   (balancers.ts), as Istio's default `previous_hosts` retry predicate does;
 * - gives the new try `attemptBudget(...)` from deadline.ts: the route timeout covers all tries.
 *
 * retryOn semantics (Envoy docs configuration/http/http_filters/router_filter.rst, x-envoy-retry-on,
 * and source/common/router/retry_state_impl.cc `wouldRetryFromHeaders` / `wouldRetryFromReset`):
 *
 * | outcome              | 5xx | gateway-error | reset | connect-failure | refused-stream | retriable-4xx | status codes |
 * |----------------------|-----|---------------|-------|-----------------|----------------|---------------|--------------|
 * | 500, 501, 505…599    | yes |               |       |                 |                |               | if listed    |
 * | 502, 503, 504        | yes | yes           |       |                 |                |               | if listed    |
 * | 409                  |     |               |       |                 |                | yes           | if listed    |
 * | other status         |     |               |       |                 |                |               | if listed    |
 * | connect-failure      | yes | yes           | yes   | yes             |                |               |              |
 * | refused-stream       | yes | yes           | yes   |                 | yes            |               |              |
 * | reset                | yes | yes           | yes   |                 |                |               |              |
 * | timeout (per try)    | yes | yes           | yes   |                 |                |               |              |
 * | overflow (local)     | never: Envoy never retries a local pool overflow                              |
 *
 * Envoy retries every upstream reset (and a per-try timeout, which resets the stream) under `5xx`
 * and `gateway-error` ("we count an upstream reset as a 5xx"); `reset` covers "does not respond at
 * all (disconnect/reset/read timeout)". A bare status code in retryOn (Istio: "503") is added to
 * the retriable status codes and turns `retriable-status-codes` on, as Istio's translation does.
 * Unknown entries (Istio's gRPC conditions `unavailable`, `cancelled`, … have no meaning for
 * plain HTTP) are ignored.
 *
 * Method idempotency is NOT considered, as in Istio/Envoy: a POST is retried like a GET. Concord's
 * services make writes idempotent (Idempotency-Key) instead.
 *
 * Back-off (router_filter.rst, "x-envoy-max-retries"): "a fully jittered exponential back-off
 * algorithm for retries with a default base interval of 25ms. Given a base interval B and retry
 * number N, the back-off for the retry is in the range [0, (2^N-1)B) … capped at a maximum
 * interval, which defaults to 10 times the base interval (250ms)". The cap clamps the drawn value
 * (Envoy `JitteredBackOffStrategy`), so late retries often wait exactly 250 ms. This differs from
 * backoff.ts (range [0, min(cap, base·2^(N-1))]) on purpose: it is Envoy's.
 *
 * No `retries` on the route: Istio installs a default policy — 2 retries on
 * "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes" with retriable
 * status 503 (as seen in Envoy config dumps of Istio sidecars; `attempts: 0` disables it).
 * Concord does the same for HTTP: 2 retries on connect-failure, refused-stream and 503. A route
 * that sets `retries` but leaves `retryOn` empty keeps those default conditions (Istio starts
 * from its default policy and overrides only what is set).
 *
 * Faults and retries compose (unlike Istio, istio/istio#13705): an injected abort is an attempt
 * outcome like any other and is retried when the route's EXPLICIT retry policy says so. The
 * implicit default policy does not retry injected aborts: a route with a fault and no retry
 * policy shows its configured abort percentage, and one with a retry policy shows what that
 * policy makes of it.
 */
import { type AttemptOutcome, is5xx, isGatewayError, isStatusOutcome } from './outcome.js';
import { type Random, randomUnit } from './random.js';
import type { HttpRetry } from './types.js';

export type RetryCondition = '5xx' | 'gateway-error' | 'reset' | 'connect-failure' | 'refused-stream' | 'retriable-4xx' | 'retriable-status-codes';

export interface RetryPolicy {
  /** Retries allowed after the first try. */
  attempts: number;
  /** Budget of one try; undefined: only the route timeout applies. */
  perTryTimeoutMs: number | undefined;
  conditions: ReadonlySet<RetryCondition>;
  statusCodes: ReadonlySet<number>;
  /** False for the implicit default (route without `retries`): injected faults are then not retried. */
  explicit: boolean;
}

export type RetryDecision =
  | { retry: true; delayMs: number; retryNumber: number }
  | { retry: false; reason: 'not-retriable' | 'exhausted' | 'deadline' | 'overflow' | 'injected-fault-without-retry-policy' };

export const RETRY_BASE_INTERVAL_MS = 25;
export const RETRY_MAX_INTERVAL_MS = 10 * RETRY_BASE_INTERVAL_MS;
/** Upper bound on `attempts` whatever the configuration says (the control plane accepts 0..100). */
export const MAX_RETRY_ATTEMPTS = 100;

const CONDITIONS: ReadonlySet<string> = new Set<RetryCondition>([
  '5xx',
  'gateway-error',
  'reset',
  'connect-failure',
  'refused-stream',
  'retriable-4xx',
  'retriable-status-codes',
]);

export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  attempts: 2,
  perTryTimeoutMs: undefined,
  conditions: new Set<RetryCondition>(['connect-failure', 'refused-stream', 'retriable-status-codes']),
  statusCodes: new Set([503]),
  explicit: false,
});

export function resolveRetryPolicy(retries: HttpRetry | undefined): RetryPolicy {
  if (!retries) return DEFAULT_RETRY_POLICY;
  const attempts = Number.isFinite(retries.attempts) && retries.attempts > 0 ? Math.min(MAX_RETRY_ATTEMPTS, Math.floor(retries.attempts)) : 0;
  const perTryTimeoutMs = retries.perTryTimeoutMs !== undefined && retries.perTryTimeoutMs > 0 ? retries.perTryTimeoutMs : undefined;
  const conditions = new Set<RetryCondition>();
  const statusCodes = new Set<number>();
  for (const raw of retries.retryOn) {
    const item = raw.trim();
    if (CONDITIONS.has(item)) conditions.add(item as RetryCondition);
    else if (/^[1-5]\d\d$/.test(item)) statusCodes.add(Number(item));
  }
  if (statusCodes.size > 0) conditions.add('retriable-status-codes');
  if (conditions.size === 0) {
    return { ...DEFAULT_RETRY_POLICY, attempts, perTryTimeoutMs, explicit: true };
  }
  return { attempts, perTryTimeoutMs, conditions, statusCodes, explicit: true };
}

/** The retryOn table: would this outcome be retried if retries were left? */
export function isRetriable(policy: RetryPolicy, outcome: AttemptOutcome): boolean {
  const on = policy.conditions;
  if (isStatusOutcome(outcome)) {
    const s = outcome.status;
    if (on.has('5xx') && is5xx(s)) return true;
    if (on.has('gateway-error') && isGatewayError(s)) return true;
    if (on.has('retriable-4xx') && s === 409) return true;
    return on.has('retriable-status-codes') && policy.statusCodes.has(s);
  }
  switch (outcome.error) {
    case 'overflow':
      return false;
    case 'connect-failure':
      return on.has('5xx') || on.has('gateway-error') || on.has('reset') || on.has('connect-failure');
    case 'refused-stream':
      return on.has('5xx') || on.has('gateway-error') || on.has('reset') || on.has('refused-stream');
    case 'reset':
    case 'timeout':
      return on.has('5xx') || on.has('gateway-error') || on.has('reset');
  }
}

/**
 * After try number `attempt` (1-based) ended with `outcome`, with `remainingMs` left before the
 * route deadline (Infinity without one): retry, and after how long?
 */
export function decideRetry(policy: RetryPolicy, attempt: number, outcome: AttemptOutcome, remainingMs: number, random: Random): RetryDecision {
  if (!isStatusOutcome(outcome) && outcome.error === 'overflow') return { retry: false, reason: 'overflow' };
  if (isStatusOutcome(outcome) && outcome.injected === true && !policy.explicit) return { retry: false, reason: 'injected-fault-without-retry-policy' };
  if (!isRetriable(policy, outcome)) return { retry: false, reason: 'not-retriable' };
  if (!(attempt >= 1) || attempt > policy.attempts) return { retry: false, reason: 'exhausted' };
  const retryNumber = Math.floor(attempt);
  const delayMs = retryBackoffMs(retryNumber, random);
  if (!(remainingMs > delayMs)) return { retry: false, reason: 'deadline' };
  return { retry: true, delayMs, retryNumber };
}

/** Envoy's back-off before retry number `retryNumber` (1-based): min(uniform[0, (2^N−1)·base), max). */
export function retryBackoffMs(retryNumber: number, random: Random, baseMs = RETRY_BASE_INTERVAL_MS, maxMs = 10 * baseMs): number {
  const n = Math.min(30, Math.max(1, Math.floor(retryNumber)));
  const upper = (2 ** n - 1) * baseMs;
  return Math.min(Math.floor(randomUnit(random) * upper), maxMs);
}
