/**
 * Circuit breaker with the guide's semantics: CLOSED → OPEN after `failureThreshold`
 * consecutive failures; OPEN → HALF_OPEN once `timeoutMs` has passed; HALF_OPEN → CLOSED after
 * `successThreshold` successes; any failure in HALF_OPEN → OPEN again. In HALF_OPEN at most
 * `halfOpenMaxCalls` trial calls are in flight at once (the guide's sketch let everyone through).
 * Pure: time is passed in.
 */
export type BreakerState = 'CLOSED' | 'OPEN' | 'HALF_OPEN';

export interface BreakerPolicy {
  failureThreshold: number;
  successThreshold: number;
  timeoutMs: number;
  halfOpenMaxCalls: number;
}

export interface Breaker {
  state: BreakerState;
  failures: number;
  successes: number;
  openedAtMs: number;
  inFlightTrials: number;
}

export const DEFAULT_BREAKER: BreakerPolicy = { failureThreshold: 5, successThreshold: 2, timeoutMs: 30_000, halfOpenMaxCalls: 1 };

export function newBreaker(): Breaker {
  return { state: 'CLOSED', failures: 0, successes: 0, openedAtMs: 0, inFlightTrials: 0 };
}

/** May a call go out now? Moves OPEN → HALF_OPEN when the timeout has passed. */
export function admit(p: BreakerPolicy, b: Breaker, nowMs: number): { breaker: Breaker; allowed: boolean } {
  if (b.state === 'OPEN') {
    if (nowMs - b.openedAtMs < p.timeoutMs) return { breaker: b, allowed: false };
    b = { ...b, state: 'HALF_OPEN', successes: 0, inFlightTrials: 0 };
  }
  if (b.state === 'HALF_OPEN') {
    if (b.inFlightTrials >= p.halfOpenMaxCalls) return { breaker: b, allowed: false };
    return { breaker: { ...b, inFlightTrials: b.inFlightTrials + 1 }, allowed: true };
  }
  return { breaker: b, allowed: true };
}

export function onSuccess(p: BreakerPolicy, b: Breaker): Breaker {
  if (b.state === 'HALF_OPEN') {
    const successes = b.successes + 1;
    const inFlightTrials = Math.max(0, b.inFlightTrials - 1);
    if (successes >= p.successThreshold) return newBreaker();
    return { ...b, successes, inFlightTrials };
  }
  return { ...b, failures: 0 };
}

export function onFailure(p: BreakerPolicy, b: Breaker, nowMs: number): Breaker {
  if (b.state === 'HALF_OPEN') return { state: 'OPEN', failures: p.failureThreshold, successes: 0, openedAtMs: nowMs, inFlightTrials: 0 };
  if (b.state === 'OPEN') return b;
  const failures = b.failures + 1;
  if (failures >= p.failureThreshold) return { ...b, state: 'OPEN', failures, openedAtMs: nowMs, successes: 0 };
  return { ...b, failures };
}
