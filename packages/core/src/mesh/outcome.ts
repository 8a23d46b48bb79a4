/**
 * What happened to one attempt of an outbound call: the shared vocabulary of `retry.ts` (retry or
 * not) and `outlier.ts` (eject or not). Pure data and classification, no state.
 *
 * ```ts
 * type AttemptOutcome = { status: number; injected?: boolean } | { error: TransportError };
 * is5xxOutcome(o): boolean          // 5xx response, or any transport failure of the attempt
 * isGatewayErrorOutcome(o): boolean // 502/503/504, or any transport failure of the attempt
 * ```
 *
 * Transport errors (`TransportError`):
 * - `connect-failure`: the TCP/TLS connection could not be made (refused, connect timeout).
 * - `reset`: the connection broke before a response arrived (ECONNRESET, socket hang up).
 * - `refused-stream`: the upstream refused the request before processing it (HTTP/2
 *   REFUSED_STREAM; for HTTP/1.1 the shell may map a 503 it knows was never processed to it).
 * - `timeout`: the per-try timeout fired before a response arrived.
 * - `overflow`: the local connection pool rejected the attempt (no endpoint was contacted).
 *
 * Envoy classifies locally originated failures the same way when
 * `split_external_local_origin_errors` is false (its default, and Istio's): a connect failure
 * counts as a 503 and a timeout as a 504 — both 5xx and gateway errors
 * (envoy source/common/upstream/outlier_detection_impl.cc, `resultToHttpCode`;
 * docs intro/arch_overview/upstream/outlier.rst "Consecutive Gateway Failure").
 */

export type TransportError = 'connect-failure' | 'reset' | 'refused-stream' | 'timeout' | 'overflow';

export type AttemptOutcome =
  | {
      status: number;
      /** True when the fault-injection module produced this status (no endpoint was called). */
      injected?: boolean;
    }
  | { error: TransportError };

export function isStatusOutcome(o: AttemptOutcome): o is { status: number; injected?: boolean } {
  return 'status' in o;
}

/** 500..599 (as Envoy's `CodeUtility::is5xx`). */
export function is5xx(status: number): boolean {
  return status >= 500 && status <= 599;
}

/** 502, 503, 504 (as Envoy's `CodeUtility::isGatewayError`). */
export function isGatewayError(status: number): boolean {
  return status === 502 || status === 503 || status === 504;
}

/** A 5xx response, or a transport failure that reached (or tried to reach) an endpoint. */
export function is5xxOutcome(o: AttemptOutcome): boolean {
  if (isStatusOutcome(o)) return is5xx(o.status);
  return o.error !== 'overflow';
}

/** A 502/503/504 response, or a transport failure that reached (or tried to reach) an endpoint. */
export function isGatewayErrorOutcome(o: AttemptOutcome): boolean {
  if (isStatusOutcome(o)) return isGatewayError(o.status);
  return o.error !== 'overflow';
}
