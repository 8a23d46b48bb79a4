/**
 * Connection-pool accounting for one destination (host+subset), the circuit breaker of Istio's
 * `connectionPool`. The state is a plain immutable value; every function returns the next state
 * and what the shell must do (dispatch on a connection, open one, close one, queue, answer 503).
 *
 * ```ts
 * const limits = poolLimits(policy.connectionPool);
 * let pool = emptyPool();
 * ({ state: pool, grant } = acquire(limits, pool, endpointId));
 *   // grant: { kind: 'dispatch', connectionId, open } | { kind: 'queue' } | { kind: 'reject', reason }
 * ({ state: pool, close, next } = release(limits, pool, endpointId, connectionId, { reusable }));
 *   // close: close that connection; next: a queued request of that endpoint now runs on next.connectionId
 * ({ state: pool, next } = connectionClosed(limits, pool, endpointId, connectionId));  // an idle one went away
 * pool = abandon(pool, endpointId);            // a queued request gave up (deadline, cancel)
 * ({ state: pool, allowed } = beginRetry(limits, pool));  pool = endRetry(pool);
 * inFlight(pool, endpointId)                   // load for LEAST_REQUEST (balancers.ts)
 * ```
 *
 * Model: HTTP/1.1 keep-alive, one request per connection at a time. A request first gets an
 * endpoint from the balancer, then a connection on that endpoint: an idle one, else a new one
 * while the endpoint has fewer than `maxConnections`, else it waits in that endpoint's FIFO queue
 * (the queue itself lives in the shell; this module counts it) while fewer than
 * `http1MaxPendingRequests` wait destination-wide, else it is rejected and the shell answers 503
 * at once (Envoy's "upstream overflow", UO). `http2MaxRequests` bounds requests in flight
 * destination-wide (Envoy `max_requests`): past it, reject. A connection is closed after serving
 * `maxRequestsPerConnection` requests (0 = unlimited, 1 = no keep-alive). When a connection frees
 * up, the endpoint's oldest queued request takes it (or a fresh connection, if it was closed).
 * `maxRetries` bounds retries outstanding at once (Envoy `max_retries`).
 *
 * Differences from Envoy, on purpose: Envoy counts `max_connections` across the whole cluster;
 * Concord counts it per endpoint, as the Concord config types define it. Istio's defaults are
 * 2^32−1 ("unlimited"); Concord puts a finite ceiling on each (DEFAULT_POOL_LIMITS) so a runaway
 * caller cannot exhaust file descriptors or memory. A value <= 0 in the config means "not set"
 * (the control plane normalises 0 away), except maxRequestsPerConnection where 0 means
 * unlimited (Istio).
 *
 * Calling `release`/`connectionClosed` for a connection the state does not hold is a bug in the
 * shell and throws (InvariantError).
 */
import { invariant } from '../assert.js';
import type { ConnectionPoolSettings } from './types.js';

export interface PoolLimits {
  /** Connections per endpoint (tcp.maxConnections). */
  maxConnections: number;
  /** Requests waiting for a connection, destination-wide (http.http1MaxPendingRequests). */
  maxPending: number;
  /** Requests in flight, destination-wide (http.http2MaxRequests). */
  maxRequests: number;
  /** Requests one connection serves before it is closed; Infinity when unlimited. */
  maxRequestsPerConnection: number;
  /** Retries outstanding at once, destination-wide (http.maxRetries). */
  maxRetries: number;
}

export const DEFAULT_POOL_LIMITS: Readonly<PoolLimits> = Object.freeze({
  maxConnections: 1024,
  maxPending: 1024,
  maxRequests: 4096,
  maxRequestsPerConnection: Number.POSITIVE_INFINITY,
  maxRetries: 1024,
});

export interface PoolConnection {
  id: number;
  busy: boolean;
  /** Requests completed on this connection. */
  served: number;
}

export interface EndpointPool {
  connections: readonly PoolConnection[];
  /** Requests of this endpoint waiting for a connection. */
  queued: number;
}

export interface PoolState {
  endpoints: ReadonlyMap<string, EndpointPool>;
  /** Requests waiting, all endpoints. */
  pending: number;
  /** Requests in flight (holding a connection), all endpoints. */
  active: number;
  /** Retries outstanding. */
  retries: number;
  nextConnectionId: number;
}

export type Grant =
  /** Send on `connectionId`; `open`: it is a new connection the shell must open first. */
  | { kind: 'dispatch'; connectionId: number; open: boolean }
  /** Wait for `release`/`connectionClosed` of this endpoint to hand over a connection. */
  | { kind: 'queue' }
  /** Answer 503 at once. */
  | { kind: 'reject'; reason: 'max-requests' | 'max-pending' };

/** A queued request of the endpoint that now runs. */
export type Handoff = { connectionId: number; open: boolean } | null;

export function poolLimits(settings: ConnectionPoolSettings | undefined): PoolLimits {
  const positive = (v: number | undefined, d: number) => (v !== undefined && Number.isFinite(v) && v > 0 ? Math.floor(v) : d);
  const perConn = settings?.maxRequestsPerConnection;
  return {
    maxConnections: positive(settings?.maxConnections, DEFAULT_POOL_LIMITS.maxConnections),
    maxPending: positive(settings?.http1MaxPendingRequests, DEFAULT_POOL_LIMITS.maxPending),
    maxRequests: positive(settings?.http2MaxRequests, DEFAULT_POOL_LIMITS.maxRequests),
    maxRequestsPerConnection: perConn !== undefined && Number.isFinite(perConn) && perConn > 0 ? Math.floor(perConn) : Number.POSITIVE_INFINITY,
    maxRetries: positive(settings?.maxRetries, DEFAULT_POOL_LIMITS.maxRetries),
  };
}

export function emptyPool(): PoolState {
  return { endpoints: new Map(), pending: 0, active: 0, retries: 0, nextConnectionId: 1 };
}

const EMPTY_ENDPOINT: EndpointPool = Object.freeze({ connections: Object.freeze([]) as readonly PoolConnection[], queued: 0 });

function withEndpoint(state: PoolState, endpointId: string, ep: EndpointPool): ReadonlyMap<string, EndpointPool> {
  const m = new Map(state.endpoints);
  if (ep.connections.length === 0 && ep.queued === 0) m.delete(endpointId);
  else m.set(endpointId, ep);
  return m;
}

export function acquire(limits: PoolLimits, state: PoolState, endpointId: string): { state: PoolState; grant: Grant } {
  if (state.active >= limits.maxRequests) return { state, grant: { kind: 'reject', reason: 'max-requests' } };
  const ep = state.endpoints.get(endpointId) ?? EMPTY_ENDPOINT;
  const idle = ep.connections.find((c) => !c.busy);
  if (idle) {
    const connections = ep.connections.map((c) => (c === idle ? { ...c, busy: true } : c));
    return {
      state: { ...state, endpoints: withEndpoint(state, endpointId, { ...ep, connections }), active: state.active + 1 },
      grant: { kind: 'dispatch', connectionId: idle.id, open: false },
    };
  }
  if (ep.connections.length < limits.maxConnections) {
    const id = state.nextConnectionId;
    const connections = [...ep.connections, { id, busy: true, served: 0 }];
    return {
      state: { ...state, endpoints: withEndpoint(state, endpointId, { ...ep, connections }), active: state.active + 1, nextConnectionId: id + 1 },
      grant: { kind: 'dispatch', connectionId: id, open: true },
    };
  }
  if (state.pending < limits.maxPending) {
    return {
      state: { ...state, endpoints: withEndpoint(state, endpointId, { ...ep, queued: ep.queued + 1 }), pending: state.pending + 1 },
      grant: { kind: 'queue' },
    };
  }
  return { state, grant: { kind: 'reject', reason: 'max-pending' } };
}

/**
 * The request on `connectionId` finished. `reusable: false` when the connection cannot carry
 * another request (error, reset, `Connection: close`).
 */
export function release(
  limits: PoolLimits,
  state: PoolState,
  endpointId: string,
  connectionId: number,
  opts: { reusable?: boolean } = {},
): { state: PoolState; close: boolean; next: Handoff } {
  const ep = state.endpoints.get(endpointId);
  const conn = ep?.connections.find((c) => c.id === connectionId);
  invariant(ep && conn?.busy, `pool: release of connection ${connectionId} on ${endpointId}, which holds no request`);
  const served = conn.served + 1;
  const close = opts.reusable === false || served >= limits.maxRequestsPerConnection;
  const remaining = close ? ep.connections.filter((c) => c !== conn) : ep.connections.map((c) => (c === conn ? { ...c, busy: false, served } : c));
  const after = takeQueued(limits, { ...state, active: state.active - 1 }, endpointId, { connections: remaining, queued: ep.queued });
  return { state: after.state, close, next: after.next };
}

/** An idle connection went away (idle timeout, peer closed it). */
export function connectionClosed(limits: PoolLimits, state: PoolState, endpointId: string, connectionId: number): { state: PoolState; next: Handoff } {
  const ep = state.endpoints.get(endpointId);
  const conn = ep?.connections.find((c) => c.id === connectionId);
  invariant(ep && conn && !conn.busy, `pool: connectionClosed for ${connectionId} on ${endpointId}, which is not an idle connection`);
  return takeQueued(limits, state, endpointId, { connections: ep.connections.filter((c) => c !== conn), queued: ep.queued });
}

/**
 * Stores the endpoint's new pool, first giving its oldest queued request (if any) an idle
 * connection, or a new one if there is room.
 */
function takeQueued(limits: PoolLimits, state: PoolState, endpointId: string, ep: EndpointPool): { state: PoolState; next: Handoff } {
  if (ep.queued > 0) {
    const idle = ep.connections.find((c) => !c.busy);
    let next: Handoff = null;
    let connections = ep.connections;
    let nextConnectionId = state.nextConnectionId;
    if (idle) {
      connections = connections.map((c) => (c === idle ? { ...c, busy: true } : c));
      next = { connectionId: idle.id, open: false };
    } else if (connections.length < limits.maxConnections) {
      connections = [...connections, { id: nextConnectionId, busy: true, served: 0 }];
      next = { connectionId: nextConnectionId, open: true };
      nextConnectionId++;
    }
    if (next) {
      return {
        state: {
          ...state,
          endpoints: withEndpoint(state, endpointId, { connections, queued: ep.queued - 1 }),
          pending: state.pending - 1,
          active: state.active + 1,
          nextConnectionId,
        },
        next,
      };
    }
  }
  return { state: { ...state, endpoints: withEndpoint(state, endpointId, ep) }, next: null };
}

/** A queued request of `endpointId` left the queue without a connection. */
export function abandon(state: PoolState, endpointId: string): PoolState {
  const ep = state.endpoints.get(endpointId);
  invariant(ep && ep.queued > 0, `pool: abandon on ${endpointId}, which has no queued request`);
  return { ...state, endpoints: withEndpoint(state, endpointId, { ...ep, queued: ep.queued - 1 }), pending: state.pending - 1 };
}

/** May a retry start now? (Envoy's retry circuit breaker.) Pair every allowed retry with `endRetry`. */
export function beginRetry(limits: PoolLimits, state: PoolState): { state: PoolState; allowed: boolean } {
  if (state.retries >= limits.maxRetries) return { state, allowed: false };
  return { state: { ...state, retries: state.retries + 1 }, allowed: true };
}

export function endRetry(state: PoolState): PoolState {
  invariant(state.retries > 0, 'pool: endRetry without a retry outstanding');
  return { ...state, retries: state.retries - 1 };
}

/** Requests on the endpoint, running or queued: the load LEAST_REQUEST compares. */
export function inFlight(state: PoolState, endpointId: string): number {
  const ep = state.endpoints.get(endpointId);
  if (!ep) return 0;
  let busy = 0;
  for (const c of ep.connections) if (c.busy) busy++;
  return busy + ep.queued;
}
