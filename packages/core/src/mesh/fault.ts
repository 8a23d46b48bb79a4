/**
 * Fault injection for one attempt: whether to delay it and whether to abort it instead of
 * calling an endpoint. Pure: randomness is injected.
 *
 * ```ts
 * decideFault(route.fault, random)   // → { delayMs, abortStatus } ; NO_FAULT when nothing applies
 * ```
 *
 * - Delay and abort are decided independently, each with its own percentage (0..100), delay
 *   first, as Envoy's fault filter does; one attempt may be both delayed and then aborted.
 *   One draw is taken per configured fault with a percentage strictly between 0 and 100.
 * - `abortStatus`: the shell answers that status without calling any endpoint and reports the
 *   attempt as `{ status, injected: true }`. Outlier detection ignores injected outcomes.
 * - Faults apply PER ATTEMPT, not per request, so faults and retries compose: an injected abort
 *   is retried by the route's explicit retry policy (retry.ts), each retry rolling the dice
 *   again. Istio applies faults once per request before its retry logic, so an injected abort is
 *   never retried there (istio/istio#13705); Concord deliberately differs, which is what makes a
 *   retry policy testable with faults.
 * - The injected delay is part of the attempt: it counts against the per-try timeout and the route
 *   timeout (deadline.ts). A delay longer than the attempt's budget ends as a per-try `timeout`,
 *   which the retry policy may retry. (In Envoy the fault filter runs before the router starts
 *   its timers.)
 * - Defensive reading: a negative or non-finite delay is no delay; an abort status outside
 *   200..599 is no abort (Istio's validator refuses both).
 */
import { type Random, randomChance } from './random.js';
import type { HttpFaultInjection } from './types.js';

export interface FaultDecision {
  delayMs: number;
  abortStatus: number | null;
}

export const NO_FAULT: FaultDecision = Object.freeze({ delayMs: 0, abortStatus: null });

export function decideFault(fault: HttpFaultInjection | undefined, random: Random): FaultDecision {
  if (!fault) return NO_FAULT;
  let delayMs = 0;
  let abortStatus: number | null = null;
  const d = fault.delay;
  if (d && Number.isFinite(d.fixedDelayMs) && d.fixedDelayMs > 0 && randomChance(random, d.percentage)) delayMs = d.fixedDelayMs;
  const a = fault.abort;
  if (a && Number.isInteger(a.httpStatus) && a.httpStatus >= 200 && a.httpStatus <= 599 && randomChance(random, a.percentage)) abortStatus = a.httpStatus;
  return delayMs === 0 && abortStatus === null ? NO_FAULT : { delayMs, abortStatus };
}
