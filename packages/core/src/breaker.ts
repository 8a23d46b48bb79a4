/**
 * Circuit breaker with the guide's semantics: CLOSED → OPEN after `failureThreshold`
 * consecutive failures; OPEN → HALF_OPEN once `timeoutMs` has passed; HALF_OPEN → CLOSED after
 * `successThreshold` successes; any failure in HALF_OPEN → OPEN again. In HALF_OPEN at most
 * `halfOpenMaxCalls` trial calls are in flight at once (the guide's sketch let everyone through).
 * Pure: time is passed in.
 *
 * Two defects of the guide's sketch are closed here:
 * - Outcomes are tied to the state they were admitted in. `admit` hands out the breaker's
 *   `generation` (it changes on every transition); an outcome reported with an older generation
 *   is ignored, so a slow call admitted while CLOSED cannot close (or re-open) a HALF_OPEN
 *   breaker it never was a trial of.
 * - A trial whose outcome is never reported cannot wedge the breaker in HALF_OPEN: after
 *   `timeoutMs` without an outcome, another trial is admitted.
 */
import { invariant } from './assert.js';

export type BreakerState = 'CLOSED' | 'OPEN' | 'HALF_OPEN';

export interface BreakerPolicy {
  failureThreshold: number;
  successThreshold: number;
  timeoutMs: number;
  halfOpenMaxCalls: number;
}

export interface Breaker {
  state: BreakerState;
  /** Consecutive failures while CLOSED. */
  failures: number;
  /** Successful trials while HALF_OPEN. */
  successes: number;
  openedAtMs: number;
  inFlightTrials: number;
  /** When the latest HALF_OPEN trial was admitted. */
  lastTrialAtMs: number;
  /** Changes on every state transition; outcomes of calls admitted in another generation are ignored. */
  generation: number;
}

export interface Admission {
  breaker: Breaker;
  allowed: boolean;
  /** Pass back to onSuccess / onFailure with the call's outcome. */
  generation: number;
}

export const DEFAULT_BREAKER: BreakerPolicy = { failureThreshold: 5, successThreshold: 2, timeoutMs: 30_000, halfOpenMaxCalls: 1 };

export function validBreakerPolicy(p: BreakerPolicy): BreakerPolicy {
  invariant(Number.isInteger(p.failureThreshold) && p.failureThreshold >= 1, `failureThreshold must be an integer ≥ 1, got ${p.failureThreshold}`);
  invariant(Number.isInteger(p.successThreshold) && p.successThreshold >= 1, `successThreshold must be an integer ≥ 1, got ${p.successThreshold}`);
  invariant(Number.isFinite(p.timeoutMs) && p.timeoutMs >= 0, `timeoutMs must be ≥ 0, got ${p.timeoutMs}`);
  invariant(Number.isInteger(p.halfOpenMaxCalls) && p.halfOpenMaxCalls >= 1, `halfOpenMaxCalls must be an integer ≥ 1, got ${p.halfOpenMaxCalls}`);
  return p;
}

export function newBreaker(generation = 0): Breaker {
  return { state: 'CLOSED', failures: 0, successes: 0, openedAtMs: 0, inFlightTrials: 0, lastTrialAtMs: 0, generation };
}

function opened(b: Breaker, nowMs: number, failures: number): Breaker {
  return { state: 'OPEN', failures, successes: 0, openedAtMs: nowMs, inFlightTrials: 0, lastTrialAtMs: 0, generation: b.generation + 1 };
}

/** May a call go out now? Moves OPEN → HALF_OPEN when the timeout has passed. */
export function admit(p: BreakerPolicy, b: Breaker, nowMs: number): Admission {
  if (b.state === 'OPEN') {
    if (nowMs - b.openedAtMs < p.timeoutMs) return { breaker: b, allowed: false, generation: b.generation };
    b = { ...b, state: 'HALF_OPEN', successes: 0, inFlightTrials: 0, generation: b.generation + 1 };
  }
  if (b.state === 'HALF_OPEN') {
    let inFlight = b.inFlightTrials;
    // Trials that never reported back for a whole timeout are presumed lost.
    if (inFlight >= p.halfOpenMaxCalls && nowMs - b.lastTrialAtMs >= p.timeoutMs) inFlight = 0;
    if (inFlight >= p.halfOpenMaxCalls) return { breaker: b, allowed: false, generation: b.generation };
    return { breaker: { ...b, inFlightTrials: inFlight + 1, lastTrialAtMs: nowMs }, allowed: true, generation: b.generation };
  }
  return { breaker: b, allowed: true, generation: b.generation };
}

/**
 * A call admitted with `generation` succeeded. Without a generation the outcome is taken to
 * belong to the current state (the guide's behaviour).
 */
export function onSuccess(p: BreakerPolicy, b: Breaker, generation = b.generation): Breaker {
  if (generation !== b.generation) return b;
  if (b.state === 'HALF_OPEN') {
    const successes = b.successes + 1;
    if (successes >= p.successThreshold) return newBreaker(b.generation + 1);
    return { ...b, successes, inFlightTrials: Math.max(0, b.inFlightTrials - 1) };
  }
  if (b.state === 'OPEN') return b;
  return b.failures === 0 ? b : { ...b, failures: 0 };
}

export function onFailure(p: BreakerPolicy, b: Breaker, nowMs: number, generation = b.generation): Breaker {
  if (generation !== b.generation) return b;
  if (b.state === 'HALF_OPEN') return opened(b, nowMs, p.failureThreshold);
  if (b.state === 'OPEN') return b;
  const failures = b.failures + 1;
  if (failures >= p.failureThreshold) return opened(b, nowMs, failures);
  return { ...b, failures };
}

