/**
 * Deadlines: how long a call and each of its tries may take, and the header that carries the
 * remaining time downstream so that no downstream call outlives its caller. Pure arithmetic on
 * times the caller passes in.
 *
 * ```ts
 * // inbound (service kit), on receipt:
 * const inbound = inboundDeadline(req.headers[TIMEOUT_HEADER], receivedAtMs)   // { ok, deadlineMs } | { ok: false, error }
 * // outbound (mesh client), per call and per try:
 * const deadlineMs = callDeadline(startMs, route.timeoutMs, inbound.deadlineMs)
 * const budget = attemptBudget(nowMs, deadlineMs, retryPolicy.perTryTimeoutMs) // { timeoutMs, deadlineMs, limitedBy }
 * headers[TIMEOUT_HEADER] = timeoutHeaderValue(budget.deadlineMs, nowAtSendMs)  // null → send no header
 *   // (remaining whole ms at send time, less TRANSIT_ALLOWANCE_MS)
 * // one-shot form of the two above (first try):
 * effectiveTimeout(routeTimeoutMs, perTryTimeoutMs, inboundRemainingMs, nowMs)
 * ```
 *
 * Clock: every `…Ms` time here is on ONE local monotonic clock (`performance.now()` in the
 * shell), never compared across processes. Deadline `Infinity` means "none".
 *
 * The header, `x-concord-timeout-ms`: the REMAINING time in whole milliseconds, computed at send
 * time — not an absolute epoch deadline. Like gRPC's `grpc-timeout` (a relative timeout,
 * doc/PROTOCOL-HTTP2.md) and Envoy's `x-envoy-expected-rq-timeout-ms`, a relative value needs no
 * clock agreement between processes: the receiver adds it to its own clock on receipt, so clock
 * offsets and skew between processes do not matter. What a relative value cannot see is the time
 * in transit: the receiver's deadline is later than the caller's by the one-way latency. The
 * sender therefore rounds down and subtracts `TRANSIT_ALLOWANCE_MS` (1 ms, more than a loopback
 * hop normally takes), so in practice the downstream deadline falls before the caller's; if a hop
 * takes longer (a stalled event loop), the downstream outlives its caller by at most the excess.
 * The caller never depends on this: it stops waiting at its own deadline regardless.
 * Grammar: 1 to 8 ASCII digits (as grpc-timeout's TimeoutValue), value 0..99,999,999 (≈ 27.7 h);
 * anything else is refused (the service kit answers 400). A remaining time above the maximum is
 * sent as the maximum; 0 means "already expired" (the receiver answers 504 without working).
 *
 * What is propagated is the budget of the try being sent (`attemptBudget().deadlineMs`): a
 * downstream call outliving its try is useless, since the try is abandoned then.
 *
 * Route timeout (Istio `timeout`, default: none) bounds the whole call including every retry and
 * back-off (Envoy router_filter.rst: "The route timeout … includes all retries"); the per-try
 * timeout (Istio `perTryTimeout`, default: none) bounds each try; an inbound deadline bounds
 * both. A value <= 0 or non-finite means "not set".
 */

export const TIMEOUT_HEADER = 'x-concord-timeout-ms';
export const MAX_TIMEOUT_HEADER_MS = 99_999_999;
/** Subtracted from the remaining time when it is sent: an allowance for the hop's transit time. */
export const TRANSIT_ALLOWANCE_MS = 1;

export type DeadlineResult = { ok: true; deadlineMs: number } | { ok: false; error: string };

export interface AttemptBudget {
  /** How long this try may take (0: the deadline has passed; do not send). Infinity: unbounded. */
  timeoutMs: number;
  /** When this try must end: nowMs + timeoutMs, or the (past) call deadline once expired. */
  deadlineMs: number;
  /** Which bound set the budget. */
  limitedBy: 'none' | 'call' | 'per-try';
}

function isSet(ms: number | undefined): ms is number {
  return ms !== undefined && Number.isFinite(ms) && ms > 0;
}

/**
 * The inbound deadline from the header's value(s) received at `receivedAtMs`: Infinity when the
 * header is absent, an error when it is malformed or repeated with different values.
 */
export function inboundDeadline(value: string | readonly string[] | undefined, receivedAtMs: number): DeadlineResult {
  if (value === undefined) return { ok: true, deadlineMs: Number.POSITIVE_INFINITY };
  const values = typeof value === 'string' ? [value] : value;
  if (values.length === 0) return { ok: true, deadlineMs: Number.POSITIVE_INFINITY };
  const first = values[0] as string;
  if (values.some((v) => v !== first)) return { ok: false, error: `${TIMEOUT_HEADER} sent more than once with different values` };
  const ms = parseTimeoutHeader(first);
  if (ms === null) return { ok: false, error: `${TIMEOUT_HEADER} must be 1 to 8 digits (remaining milliseconds), got ${JSON.stringify(first.slice(0, 32))}` };
  return { ok: true, deadlineMs: receivedAtMs + ms };
}

/** Milliseconds from one header value, or null when it is not 1 to 8 ASCII digits. */
export function parseTimeoutHeader(value: string): number | null {
  return /^[0-9]{1,8}$/.test(value) ? Number(value) : null;
}

/**
 * The header value announcing `deadlineMs` to a request sent at `nowMs`: the remaining whole
 * milliseconds less the transit allowance; null when there is no deadline.
 */
export function timeoutHeaderValue(deadlineMs: number, nowMs: number, transitAllowanceMs: number = TRANSIT_ALLOWANCE_MS): string | null {
  if (deadlineMs === Number.POSITIVE_INFINITY) return null;
  const remaining = Math.floor(deadlineMs - nowMs - Math.max(0, transitAllowanceMs));
  if (!(remaining > 0)) return '0';
  return String(Math.min(MAX_TIMEOUT_HEADER_MS, remaining));
}

/** The deadline of a whole outbound call (all tries) starting at `startMs`. */
export function callDeadline(startMs: number, routeTimeoutMs: number | undefined, inboundDeadlineMs: number = Number.POSITIVE_INFINITY): number {
  const route = isSet(routeTimeoutMs) ? startMs + routeTimeoutMs : Number.POSITIVE_INFINITY;
  return Math.min(route, Number.isNaN(inboundDeadlineMs) ? Number.POSITIVE_INFINITY : inboundDeadlineMs);
}

/** The budget of one try starting at `nowMs` under the call deadline. */
export function attemptBudget(nowMs: number, callDeadlineMs: number, perTryTimeoutMs: number | undefined): AttemptBudget {
  const callLeft = Math.max(0, callDeadlineMs - nowMs);
  if (isSet(perTryTimeoutMs) && perTryTimeoutMs < callLeft) {
    // min(): floating-point rounding must not push the try past the call deadline.
    return { timeoutMs: perTryTimeoutMs, deadlineMs: Math.min(nowMs + perTryTimeoutMs, callDeadlineMs), limitedBy: 'per-try' };
  }
  if (callLeft === Number.POSITIVE_INFINITY) return { timeoutMs: callLeft, deadlineMs: callLeft, limitedBy: 'none' };
  return { timeoutMs: callLeft, deadlineMs: callDeadlineMs, limitedBy: 'call' };
}

/** Remaining milliseconds before `deadlineMs` (never negative; Infinity without a deadline). */
export function remainingMs(deadlineMs: number, nowMs: number): number {
  return Math.max(0, deadlineMs - nowMs);
}

/**
 * The first try's timeout and the call deadline, from the route timeout, the per-try timeout and
 * the remaining time of the inbound request being served (Infinity or undefined: none).
 */
export function effectiveTimeout(
  routeTimeoutMs: number | undefined,
  perTryTimeoutMs: number | undefined,
  inboundRemainingMs: number | undefined,
  nowMs: number,
): { callDeadlineMs: number; attempt: AttemptBudget } {
  const inbound = inboundRemainingMs === undefined || Number.isNaN(inboundRemainingMs) ? Number.POSITIVE_INFINITY : nowMs + Math.max(0, inboundRemainingMs);
  const callDeadlineMs = callDeadline(nowMs, routeTimeoutMs, inbound);
  return { callDeadlineMs, attempt: attemptBudget(nowMs, callDeadlineMs, perTryTimeoutMs) };
}
