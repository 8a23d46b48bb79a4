/**
 * The mesh client: the proxyless data plane inside every process. Every call from one Concord
 * process to another goes through it and gets Istio's traffic management, driven by the
 * configuration the control plane pushes (VirtualService, DestinationRule) and decided by the
 * pure modules of core/mesh:
 *
 *   route match → weighted destination → subset endpoints → per try: fault → outlier filter →
 *   balancer (another endpoint per retry) → connection pool (dispatch / queue / 503) → send under
 *   the try's budget → outlier record → retry decision (25 ms base back-off, jitter)
 *
 * plus header operations, mirroring (fire and forget), the remaining deadline propagated in
 * `x-concord-timeout-ms`, automatic mutual TLS with the workload certificate (verifying the
 * server's SPIFFE id), a CLIENT span per try, and Istio's request metrics (reporter=source).
 *
 * Hot path. Everything that depends only on the configuration version and the registry's
 * endpoint list (compiled routes, retry policies, the destination's endpoints, policy and
 * cluster) is computed once per change, not per call; a try is one timer, one undici dispatch
 * whose handler collects the body, and the pool/outlier/balancer decisions of core/mesh.
 */
import { mesh } from '@concord/core';
import { SpanKind } from '@opentelemetry/api';
import { Client } from '../http-client/undici.js';
import { type DispatchResponse, TryTimeoutError, dispatch } from '../http-client/dispatch.js';
import type { Instance, RegistryClient, ServiceWatch } from '../registry-client/client.js';
import type { Logger } from '../service-kit/logger.js';
import type { Metrics, RequestLabels } from '../telemetry/metrics.js';
import { serviceFqdn } from '../telemetry/metrics.js';
import type { Telemetry, TraceContext } from '../telemetry/tracing.js';
import { spiffeOfCert } from '../tls/ca.js';
import type { IdentityMaterial, WorkloadIdentity } from '../tls/identity.js';
import type { MeshConfigClient } from './config-client.js';

export interface CallOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  headers?: Record<string, string>;
  /** Serialized as JSON, unless `raw` is set (then a Buffer sent as is). */
  body?: unknown;
  /** Timeout of the whole call when no VirtualService route sets one. */
  timeoutMs?: number;
  /** Absolute deadline (epoch ms) inherited from the request being served. */
  deadlineMs?: number;
  signal?: AbortSignal;
  /** Return the body as a Buffer and send `body` unchanged (proxying). */
  raw?: boolean;
  /** The trace context to continue (a request's `req.trace.ctx`, a saga step's `trace`); else the active one. */
  trace?: TraceContext | null;
}

export interface CallResult<T = unknown> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: T;
  instance: Instance | null;
  /** Tries made (1 + retries). */
  attempts: number;
  /** Envoy's response flags of the last try: `-`, `DI` (delayed by a fault), `FI` (aborted by a fault), `DI,FI`. */
  flags: string;
}

export type UpstreamFailure = 'no-instances' | 'connect' | 'reset' | 'timeout' | 'overflow' | 'no-route';

/** A call that got no HTTP answer. Always transient: the caller may retry. */
export class UpstreamError extends Error {
  override name = 'UpstreamError';
  readonly transient = true;
  /** Tries made before giving up (0 when none was possible). */
  readonly attempts: number;
  /** Envoy's response flags of the last try (`UH`, `UF`, `UC`, `UT`, `UO`, possibly with `DI`). */
  readonly flags: string;
  constructor(
    readonly service: string,
    readonly kind: UpstreamFailure,
    message: string,
    details: { attempts?: number; flags?: string } = {},
  ) {
    super(message);
    this.attempts = details.attempts ?? 0;
    this.flags = details.flags ?? '-';
  }
}

const DEFAULT_TIMEOUT_MS = 5000;
const MAX_MIRRORS_IN_FLIGHT = 64;
const OUTLIER_SWEEP_MIN_MS = 100;
const KEEP_ALIVE_MS = 30_000;
const CONNECT_TIMEOUT_MS = 2000;
/** Destinations whose resolution is cached; past it the cache starts over (callers name services freely). */
const MAX_DESTINATIONS = 1024;
/**
 * The calling workload, which every call names (the server's metrics label calls with it when no
 * mTLS principal says who called). Always the last header on the wire, never a key added to the
 * caller's headers object: that store, on objects of every caller's shape, kept the order
 * service's `request` in a deoptimization loop (wrong map, 23 times in 90 s under load, each
 * reoptimization 20–100 ms of compiler time; `--trace-deopt-verbose`, 2026-11-28).
 */
const SOURCE_WORKLOAD_HEADER = 'x-concord-source-workload';
/** The trace-context headers a try sets itself when tracing (W3C and B3, as Telemetry.inject writes them). */
const PROPAGATION_HEADERS: ReadonlySet<string> = new Set([
  'traceparent',
  'tracestate',
  'b3',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
]);
/** Distinct outcomes per endpoint whose metric label objects are kept. */
const MAX_LABEL_SETS = 256;

/** 5xx, 408 and 429 answers are transient; other 4xx are the upstream's final word. */
export function isTransientStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

interface Endpoint {
  id: string;
  labels: Record<string, string>;
  instance: Instance;
}

interface Waiter {
  resolve: (h: { connectionId: number; open: boolean }) => void;
}

/** Per destination (host + subset): Envoy's cluster. */
interface Cluster {
  key: string;
  host: string;
  policyKey: string;
  limits: mesh.PoolLimits;
  pool: mesh.PoolState;
  balancer: mesh.Balancer;
  outlier: mesh.OutlierDetector | null;
  outlierIntervalMs: number;
  lastSweepMs: number;
  lastEndpointIds: string;
  tlsMode: mesh.TlsMode | undefined;
  lb: mesh.LoadBalancerSettings | undefined;
  /** undici clients by pool connection id: one connection each. */
  connections: Map<number, { client: Client; endpointId: string; generation: number }>;
  waiters: Map<string, Waiter[]>;
  /** Replaced by a cluster with a new policy: its connections close as their requests finish. */
  retired: boolean;
  /** `GET <host>`, the name of most client spans. */
  spanName: string;
  /** tcp.connectTimeout and http.idleTimeout of the DestinationRule, or the defaults. */
  connectTimeoutMs: number;
  idleTimeoutMs: number;
}

interface Compiled {
  version: number;
  routes: Map<string, mesh.RouteMatcher>;
  rules: mesh.DestinationRule[];
}

/** A destination resolved against one configuration version and one registry snapshot. */
interface Resolution {
  version: number;
  /** The watch's array it was computed from (the watch replaces the array on every change). */
  routable: readonly Instance[];
  result: { ok: true; endpoints: Endpoint[]; cluster: Cluster } | { ok: false; error: string };
}

export class MeshClient {
  private compiled: Compiled = { version: -1, routes: new Map(), rules: [] };
  private readonly clusters = new Map<string, Cluster>();
  private readonly resolutions = new Map<string, Resolution>();
  private readonly retryPolicies = new WeakMap<mesh.HttpRoute, mesh.RetryPolicy>();
  /** Metric label objects per endpoint (or per host, for calls that reached none), per outcome. */
  private readonly labelSets = new WeakMap<object, Map<string, RequestLabels>>();
  private readonly hostOwners = new Map<string, object>();
  private tlsGeneration = 0;
  private tls: IdentityMaterial | null = null;
  private mirrorsInFlight = 0;
  private readonly random = Math.random;
  private closed = false;

  constructor(
    private readonly opts: {
      registry: RegistryClient;
      log: Logger;
      source: string;
      /** This workload's service name and version (the source of calls). */
      service?: string;
      version?: string;
      identity?: WorkloadIdentity | null;
      config?: MeshConfigClient | null;
      telemetry?: Telemetry;
      metrics?: Metrics;
      connectionsPerEndpoint?: number;
    },
  ) {
    if (opts.identity) {
      this.tls = opts.identity.current;
      opts.identity.onRotate((m) => {
        this.tls = m;
        this.tlsGeneration++;
      });
    }
  }

  private get sourceWorkload(): string {
    return this.opts.service ?? 'unknown';
  }

  private config(): Compiled {
    const cfg = this.opts.config?.config;
    if (!cfg || cfg.version === this.compiled.version) return this.compiled;
    const routes = new Map<string, mesh.RouteMatcher>();
    for (const vs of cfg.virtualServices) {
      const m = mesh.compileVirtualService(vs);
      for (const h of vs.hosts) if (!routes.has(h)) routes.set(h, m);
    }
    this.compiled = { version: cfg.version, routes, rules: cfg.destinationRules };
    return this.compiled;
  }

  private retryPolicy(route: mesh.HttpRoute | null): mesh.RetryPolicy {
    if (!route?.retries) return mesh.DEFAULT_RETRY_POLICY;
    let p = this.retryPolicies.get(route);
    if (!p) {
      p = mesh.resolveRetryPolicy(route.retries);
      this.retryPolicies.set(route, p);
    }
    return p;
  }

  /** The endpoints, policy and cluster of a destination, recomputed only when the config or the registry changed. */
  private resolve(cfg: Compiled, destination: mesh.Destination, watch: ServiceWatch): Resolution['result'] {
    const key = destination.subset === undefined ? destination.host : `${destination.host}|${destination.subset}`;
    const cached = this.resolutions.get(key);
    if (cached && cached.version === cfg.version && cached.routable === watch.routable) return cached.result;
    const resolved = mesh.resolveDestination(cfg.rules, destination, endpointsOf(watch.routable));
    const result: Resolution['result'] = resolved.ok
      ? { ok: true, endpoints: resolved.endpoints, cluster: this.cluster(destination.host, destination.subset, resolved.policy, resolved.endpoints) }
      : { ok: false, error: resolved.error };
    if (!cached && this.resolutions.size >= MAX_DESTINATIONS) this.resolutions.clear();
    this.resolutions.set(key, { version: cfg.version, routable: watch.routable, result });
    return result;
  }

  async request<T = unknown>(service: string, call: CallOptions): Promise<CallResult<T>> {
    // Read before the first await: the active context is only there in the synchronous part.
    const parent = this.opts.telemetry?.enabled ? this.opts.telemetry.parentOf(call.trace) : null;
    const cfg = this.config();
    const method = call.method ?? (call.body === undefined ? 'GET' : 'POST');
    const baseHeaders = lowerCased(call.headers);
    let body: string | Buffer | undefined;
    if (call.raw) body = call.body as Buffer | undefined;
    else if (call.body !== undefined) {
      body = JSON.stringify(call.body);
      baseHeaders['content-type'] = 'application/json';
    }
    const req = { method, path: call.path, headers: baseHeaders };
    const route = cfg.routes.get(service)?.match(req) ?? null;
    const picked = route ? mesh.pickDestination(route, this.random) : null;
    if (route && !picked) throw new UpstreamError(service, 'no-route', `the VirtualService route for ${service} has no destination with weight`);
    const destination: mesh.Destination = picked?.destination ?? { host: service };
    const host = destination.host;

    const watch = this.opts.registry.watch(host);
    if (!watch.loaded) await watch.ready(3000);
    const resolved = this.resolve(cfg, destination, watch);
    if (!resolved.ok) throw new UpstreamError(service, 'no-instances', resolved.error);
    const { cluster, endpoints } = resolved;

    const requestOps = [picked?.headers?.request, route?.headers?.request];
    const headers = requestOps[0] || requestOps[1] ? (mesh.applyHeaderLayers(baseHeaders, requestOps) as Record<string, string>) : baseHeaders;
    const mirror = route?.mirror ? mesh.mirrorDestination(route, this.random) : null;
    if (mirror) this.mirror(mirror, method, call.path, headers, body);

    const retryPolicy = this.retryPolicy(route);
    const start = Date.now();
    const deadline = mesh.callDeadline(start, route?.timeoutMs ?? call.timeoutMs ?? DEFAULT_TIMEOUT_MS, call.deadlineMs);
    const hashKey = cluster.lb?.consistentHash ? mesh.hashKeyOf(cluster.lb, req, this.opts.service) : null;
    const state: CallState = {
      service,
      cluster,
      endpoints,
      tried: new Set(),
      hashKey,
      fault: route?.fault,
      method,
      call,
      headers,
      wire: this.wire(headers),
      body,
      parent,
    };
    const responseOps = [picked?.headers?.response, route?.headers?.response];
    let retrying = false;
    let lastEndpoint: Endpoint | null = null;
    try {
      for (let attempt = 1; ; attempt++) {
        const budget = mesh.attemptBudget(Date.now(), deadline, retryPolicy.perTryTimeoutMs);
        if (budget.timeoutMs <= 0) {
          this.observe(service, host, lastEndpoint, 504, start, 'UT');
          throw new UpstreamError(service, 'timeout', `${service} did not answer within the call's deadline`, { attempts: attempt - 1, flags: 'UT' });
        }
        const r = await this.attempt(state, budget, attempt);
        lastEndpoint = r.endpoint;
        const final = 'status' in r.outcome && !mesh.isRetriable(retryPolicy, r.outcome);
        if (final && r.response) return this.answer<T>(service, host, r, responseOps, start, attempt, call.raw);
        const d = mesh.decideRetry(retryPolicy, attempt, r.outcome, mesh.remainingMs(deadline, Date.now()), this.random);
        let allowed = d.retry;
        if (allowed && !retrying) {
          const b = mesh.beginRetry(cluster.limits, cluster.pool);
          cluster.pool = b.state;
          allowed = b.allowed;
          retrying = b.allowed;
        }
        if (!allowed) return this.finish<T>(service, host, r, responseOps, start, attempt, call.raw);
        this.opts.metrics?.retries.inc({ destination_service: serviceFqdn(host), reason: 'status' in r.outcome ? String(r.outcome.status) : r.outcome.error });
        if (d.retry && d.delayMs > 0) await sleep(d.delayMs);
      }
    } finally {
      if (retrying) cluster.pool = mesh.endRetry(cluster.pool);
    }
  }

  /**
   * The call's headers as undici's flat [name, value, …] array, without those each try sets
   * itself (the deadline, and the trace context when tracing): an array is appended to without
   * the megamorphic property stores of adding keys to objects of every caller's shape.
   */
  private wire(headers: Record<string, string>): string[] {
    const tracing = this.opts.telemetry?.enabled === true;
    const out: string[] = [];
    for (const name in headers) {
      if (name === mesh.TIMEOUT_HEADER || name === SOURCE_WORKLOAD_HEADER || (tracing && PROPAGATION_HEADERS.has(name))) continue;
      out.push(name, headers[name] as string);
    }
    out.push(SOURCE_WORKLOAD_HEADER, this.sourceWorkload);
    return out;
  }

  /** A response handed to the caller, with the route's response header operations. */
  private answer<T>(
    service: string,
    host: string,
    r: AttemptResult,
    ops: Array<mesh.HeaderOperations | undefined>,
    start: number,
    attempts: number,
    raw?: boolean,
  ): CallResult<T> {
    const res = r.response as NonNullable<AttemptResult['response']>;
    const headers = ops[0] || ops[1] ? (mesh.applyHeaderLayers(res.headers as mesh.HeaderValues, ops) as CallResult['headers']) : res.headers;
    this.observe(service, host, r.endpoint, res.status, start, r.flags);
    return { status: res.status, headers, body: decode<T>(res.raw, res.headers, raw), instance: r.endpoint?.instance ?? null, attempts, flags: r.flags };
  }

  /** The final answer after the last try: a response, or the transport failure. */
  private finish<T>(
    service: string,
    host: string,
    r: AttemptResult,
    ops: Array<mesh.HeaderOperations | undefined>,
    start: number,
    attempts: number,
    raw?: boolean,
  ): CallResult<T> {
    if (r.response) return this.answer<T>(service, host, r, ops, start, attempts, raw);
    const o = r.outcome as { error: mesh.TransportError };
    const kind: UpstreamFailure =
      o.error === 'timeout' ? 'timeout' : o.error === 'overflow' ? 'overflow' : o.error === 'reset' ? 'reset' : r.endpoint ? 'connect' : 'no-instances';
    this.observe(service, host, r.endpoint, kind === 'timeout' ? 504 : 503, start, r.flags);
    throw new UpstreamError(service, kind, r.message ?? `${service}: ${kind}`, { attempts, flags: r.flags });
  }

  /** One try: faults first (delay, abort), then the wire. Not async when there is no fault: one promise less per call. */
  private attempt(c: CallState, budget: mesh.AttemptBudget, attempt: number): Promise<AttemptResult> {
    const f = mesh.decideFault(c.fault, this.random);
    if (f === mesh.NO_FAULT) return this.send(c, budget.deadlineMs, attempt);
    return this.faulted(c, f, budget.deadlineMs, attempt);
  }

  private async faulted(c: CallState, f: mesh.FaultDecision, tryDeadline: number, attempt: number): Promise<AttemptResult> {
    if (f.delayMs > 0) {
      const wait = Math.min(f.delayMs, Math.max(0, tryDeadline - Date.now()));
      await sleep(wait);
      if (Date.now() >= tryDeadline)
        return { outcome: { error: 'timeout' }, endpoint: null, flags: 'DI,UT', message: `${c.service}: injected delay outlived the try` };
    }
    if (f.abortStatus !== null) {
      const problem = {
        type: 'https://concord.dev/problems/fault-injected',
        title: 'Fault Injected',
        status: f.abortStatus,
        detail: `fault injected by the ${c.service} VirtualService`,
      };
      return {
        outcome: { status: f.abortStatus, injected: true },
        endpoint: null,
        flags: f.delayMs > 0 ? 'DI,FI' : 'FI',
        response: {
          status: f.abortStatus,
          headers: { 'content-type': 'application/problem+json', 'x-concord-fault': 'abort' },
          raw: Buffer.from(JSON.stringify(problem)),
          closing: false,
        },
      };
    }
    const result = await this.send(c, tryDeadline, attempt);
    // A try that was delayed by a fault and then sent still reports the delay (Envoy's DI).
    if (f.delayMs > 0) result.flags = result.flags === '-' ? 'DI' : `DI,${result.flags}`;
    return result;
  }

  /** One try on the wire: pick an endpoint, get a connection, send under the try's deadline. */
  private async send(c: CallState, tryDeadline: number, attempt: number): Promise<AttemptResult> {
    const { cluster, tried, method, call } = c;
    const now = Date.now();
    if (cluster.outlier && now - cluster.lastSweepMs >= Math.max(OUTLIER_SWEEP_MIN_MS, cluster.outlierIntervalMs)) {
      cluster.lastSweepMs = now;
      this.recordOutlierEvents(cluster, cluster.outlier.sweep(now));
    }
    const candidates = cluster.outlier ? cluster.outlier.available(c.endpoints, now) : c.endpoints;
    const ep = cluster.balancer.pick(candidates, { exclude: tried, hashKey: c.hashKey, load: (id) => mesh.inFlight(cluster.pool, id) });
    if (!ep) return { outcome: { error: 'connect-failure' }, endpoint: null, flags: 'UH', message: `no healthy instance of ${cluster.host}` };
    tried.add(ep.id);

    const a = mesh.acquire(cluster.limits, cluster.pool, ep.id);
    cluster.pool = a.state;
    if (a.grant.kind === 'reject') {
      this.opts.metrics?.poolOverflows.inc({ destination_service: serviceFqdn(cluster.host) });
      return { outcome: { error: 'overflow' }, endpoint: ep, flags: 'UO', message: `${cluster.host}: connection pool overflow (503 at once)` };
    }
    const grant = a.grant.kind === 'dispatch' ? a.grant : await this.queue(cluster, ep.id, tryDeadline);
    if (grant === 'timeout') return { outcome: { error: 'timeout' }, endpoint: ep, flags: 'UT', message: `${cluster.host}: no connection before the deadline` };
    const conn = this.connection(cluster, ep, grant);
    const wire = c.wire.slice();
    const timeoutValue = mesh.timeoutHeaderValue(tryDeadline, Date.now());
    if (timeoutValue !== null) wire.push(mesh.TIMEOUT_HEADER, timeoutValue);
    const tel = this.opts.telemetry;
    const span = tel?.enabled
      ? tel.start(
          method === 'GET' ? cluster.spanName : `${method} ${cluster.host}`,
          c.parent,
          SpanKind.CLIENT,
          // Each attribute costs about a microsecond and a half per span (measured): the path is in
          // the server's span, and the try number only matters on retries.
          attempt === 1
            ? { 'http.request.method': method, 'server.address': cluster.host, 'concord.endpoint': ep.id }
            : { 'http.request.method': method, 'server.address': cluster.host, 'concord.endpoint': ep.id, 'concord.attempt': attempt },
        )
      : null;
    if (span && tel) {
      const context: Record<string, string> = {};
      tel.inject(span.ctx, context);
      for (const name in context) wire.push(name, context[name] as string);
    }
    let result: AttemptResult;
    let reusable = true;
    const timeoutMs = Math.max(1, tryDeadline - Date.now());
    try {
      const res = await dispatch(conn.client, { path: call.path, method, headers: wire, body: c.body }, timeoutMs, { signal: call.signal });
      if (res.closing) reusable = false;
      result = { outcome: { status: res.status }, endpoint: ep, flags: '-', response: res };
      if (span) {
        span.span.setAttribute('http.response.status_code', res.status);
        if (res.status >= 500) span.span.setStatus({ code: 2 });
      }
    } catch (err) {
      reusable = false;
      const kind = transportError(err);
      result = {
        outcome: { error: kind },
        endpoint: ep,
        flags: kind === 'timeout' ? 'UT' : kind === 'connect-failure' ? 'UF' : 'UC',
        message: `${cluster.host} (${ep.id}): ${describe(err, timeoutMs)}`,
      };
      span?.span.setStatus({ code: 2, message: result.message });
    }
    span?.span.end();
    this.release(cluster, ep.id, conn.id, reusable && !cluster.retired && conn.generation === this.tlsGeneration);
    if (cluster.outlier) {
      const events = cluster.outlier.record(ep.id, result.outcome, Date.now());
      if (events.length > 0) this.recordOutlierEvents(cluster, events);
    }
    return result;
  }

  /** Waits in the endpoint's queue (the pool said `queue`) for a connection, until the try's deadline. */
  private queue(cluster: Cluster, endpointId: string, deadlineMs: number): Promise<{ connectionId: number; open: boolean } | 'timeout'> {
    return new Promise((resolve) => {
      const list = cluster.waiters.get(endpointId) ?? [];
      const waiter: Waiter = {
        resolve: (h) => {
          clearTimeout(timer);
          resolve(h);
        },
      };
      const timer = setTimeout(
        () => {
          const l = cluster.waiters.get(endpointId);
          const i = l?.indexOf(waiter) ?? -1;
          if (l && i >= 0) l.splice(i, 1);
          cluster.pool = mesh.abandon(cluster.pool, endpointId);
          resolve('timeout');
        },
        Math.max(0, deadlineMs - Date.now()),
      );
      list.push(waiter);
      cluster.waiters.set(endpointId, list);
    });
  }

  private release(cluster: Cluster, endpointId: string, connectionId: number, reusable: boolean): void {
    const r = mesh.release(cluster.limits, cluster.pool, endpointId, connectionId, { reusable });
    cluster.pool = r.state;
    if (r.close) {
      const c = cluster.connections.get(connectionId);
      cluster.connections.delete(connectionId);
      void c?.client.destroy().catch(() => {});
    }
    if (r.next) {
      const next = cluster.waiters.get(endpointId)?.shift();
      if (next) next.resolve(r.next);
      else {
        // The waiter gave up at the same moment: hand the connection straight back.
        this.release(cluster, endpointId, r.next.connectionId, !r.next.open);
      }
    }
  }

  private connection(cluster: Cluster, ep: Endpoint, grant: { connectionId: number; open: boolean }): { id: number; client: Client; generation: number } {
    let c = cluster.connections.get(grant.connectionId);
    if (!c || c.endpointId !== ep.id) {
      c = {
        client: this.newClient(cluster.host, ep, cluster.tlsMode, cluster.connectTimeoutMs, cluster.idleTimeoutMs),
        endpointId: ep.id,
        generation: this.tlsGeneration,
      };
      cluster.connections.set(grant.connectionId, c);
    }
    return { id: grant.connectionId, client: c.client, generation: c.generation };
  }

  /** An undici client for one endpoint: mutual TLS (verifying the server's SPIFFE id) when auto mTLS says so. */
  private newClient(host: string, ep: Endpoint, tlsMode: mesh.TlsMode | undefined, connectTimeoutMs: number, idleTimeoutMs: number): Client {
    const tls = this.useTls(tlsMode, ep) ? this.tls : null;
    const address = ep.instance.address.includes(':') ? `[${ep.instance.address}]` : ep.instance.address;
    const expected = mesh.spiffeId(host);
    return new Client(`${tls ? 'https' : 'http'}://${address}:${ep.instance.port}`, {
      pipelining: 1,
      keepAliveTimeout: idleTimeoutMs,
      connect: tls
        ? {
            timeout: connectTimeoutMs,
            key: tls.keyPem,
            cert: tls.certPem,
            ca: tls.caPem,
            // Secure naming: the server must hold the identity of the service we meant to call.
            checkServerIdentity: (_host: string, cert: { subjectaltname?: string }) =>
              spiffeOfCert(cert) === expected ? undefined : new Error(`server identity ${spiffeOfCert(cert) ?? 'none'} is not ${expected}`),
          }
        : { timeout: connectTimeoutMs },
    });
  }

  /** Auto mTLS: TLS when the endpoint has a mesh identity, we have one, and no rule disables it. */
  private useTls(tlsMode: mesh.TlsMode | undefined, ep: Endpoint): boolean {
    if (!this.tls) return false;
    if (tlsMode === 'DISABLE' || tlsMode === 'SIMPLE') return false;
    if (tlsMode === 'ISTIO_MUTUAL' || tlsMode === 'MUTUAL') return true;
    return ep.instance.meta.mtls === '1';
  }

  private cluster(host: string, subset: string | undefined, policy: mesh.TrafficPolicy, endpoints: mesh.LabelledEndpoint[]): Cluster {
    const key = `${host}|${subset ?? ''}`;
    const policyKey = JSON.stringify(policy);
    let c = this.clusters.get(key);
    if (!c || c.policyKey !== policyKey) {
      const old = c;
      const limits = mesh.poolLimits({ maxConnections: this.opts.connectionsPerEndpoint ?? 64, ...policy.connectionPool });
      c = {
        key,
        host,
        policyKey,
        limits,
        pool: mesh.emptyPool(),
        balancer: mesh.createBalancer(policy.loadBalancer, this.random),
        outlier: policy.outlierDetection ? new mesh.OutlierDetector(policy.outlierDetection) : null,
        outlierIntervalMs: policy.outlierDetection?.intervalMs ?? 10_000,
        lastSweepMs: Date.now(),
        lastEndpointIds: '',
        tlsMode: policy.tls?.mode,
        lb: policy.loadBalancer,
        connections: new Map(),
        waiters: new Map(),
        retired: false,
        spanName: `GET ${host}`,
        connectTimeoutMs: policy.connectionPool?.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
        idleTimeoutMs: policy.connectionPool?.idleTimeoutMs ?? KEEP_ALIVE_MS,
      };
      this.clusters.set(key, c);
      // New limits take effect at once (Envoy builds a new connection pool for a changed
      // cluster and drains the old one): requests in flight finish on the old cluster.
      if (old) this.retire(old);
    }
    const ids = endpoints.map((e) => e.id);
    const joined = ids.join(',');
    if (joined !== c.lastEndpointIds) {
      if (c.outlier) c.outlier.setEndpoints(ids, Date.now());
      // Connections to endpoints that left the registry are not kept.
      const present = new Set(ids);
      for (const endpointId of c.pool.endpoints.keys()) if (!present.has(endpointId)) this.closeIdle(c, endpointId);
      c.lastEndpointIds = joined;
    }
    return c;
  }

  /** Closes the idle connections of a replaced cluster; busy ones close when released. */
  private retire(cluster: Cluster): void {
    cluster.retired = true;
    for (const endpointId of cluster.pool.endpoints.keys()) this.closeIdle(cluster, endpointId);
  }

  private closeIdle(cluster: Cluster, endpointId: string): void {
    for (const conn of cluster.pool.endpoints.get(endpointId)?.connections ?? []) {
      if (conn.busy) continue;
      cluster.pool = mesh.connectionClosed(cluster.limits, cluster.pool, endpointId, conn.id).state;
      const c = cluster.connections.get(conn.id);
      cluster.connections.delete(conn.id);
      void c?.client.close().catch(() => {});
    }
  }

  private recordOutlierEvents(cluster: Cluster, events: mesh.OutlierEvent[]): void {
    for (const e of events) {
      if (e.type === 'eject') {
        this.opts.metrics?.ejections.inc({ destination_service: serviceFqdn(cluster.host), endpoint: e.id });
        this.opts.log.info({ destination: cluster.host, endpoint: e.id, reason: e.reason, untilMs: e.untilMs }, 'outlier ejected');
      }
    }
    if (events.length > 0 && cluster.outlier) {
      this.opts.metrics?.ejected.set({ destination_service: serviceFqdn(cluster.host) }, cluster.outlier.stats(Date.now()).ejectedNow);
    }
  }

  /** Fire and forget: a copy of the request to the mirror destination (auto mTLS too); its answer is ignored. */
  private mirror(dest: mesh.Destination, method: string, path: string, headers: Record<string, string>, body: string | Buffer | undefined): void {
    if (this.mirrorsInFlight >= MAX_MIRRORS_IN_FLIGHT) return;
    const watch = this.opts.registry.watch(dest.host);
    const resolved = this.resolve(this.config(), dest, watch);
    const ep = resolved.ok ? resolved.endpoints[Math.floor(this.random() * resolved.endpoints.length)] : undefined;
    if (!resolved.ok || !ep) return;
    this.mirrorsInFlight++;
    const client = this.newClient(dest.host, ep, resolved.cluster.tlsMode, 1000, 1000);
    dispatch(client, { path, method, headers: { ...headers, [SOURCE_WORKLOAD_HEADER]: this.sourceWorkload, 'x-concord-mirror': '1' }, body }, 5000)
      .catch(() => {})
      .finally(() => {
        this.mirrorsInFlight--;
        void client.close().catch(() => {});
      });
  }

  private observe(service: string, host: string, ep: Endpoint | null, status: number, startMs: number, flags: string): void {
    const m = this.opts.metrics;
    if (!m) return;
    // Label objects are built once per endpoint × outcome and reused.
    const owner: object = ep ?? this.noEndpoint(host);
    let sets = this.labelSets.get(owner);
    if (!sets) {
      sets = new Map();
      this.labelSets.set(owner, sets);
    }
    const key = `${status}|${flags}|${service}`;
    let labels = sets.get(key);
    if (!labels) {
      if (sets.size >= MAX_LABEL_SETS) sets.clear();
      const mtls = ep?.instance.meta.mtls === '1';
      labels = {
        reporter: 'source',
        source_workload: this.opts.service ?? 'unknown',
        source_version: this.opts.version ?? 'unknown',
        source_principal: this.tls ? this.tls.spiffeId : 'unknown',
        destination_workload: host,
        destination_service: serviceFqdn(host),
        destination_service_name: service,
        destination_version: ep?.labels.version ?? 'unknown',
        destination_principal: mtls ? mesh.spiffeId(host) : 'unknown',
        request_protocol: 'http',
        response_code: String(status),
        response_flags: flags,
        connection_security_policy: ep && this.tls && mtls ? 'mutual_tls' : 'unknown',
      };
      sets.set(key, labels);
    }
    m.observeRequest(labels, Date.now() - startMs);
  }

  /** A stand-in owner of the label sets of calls that reached no endpoint. */
  private noEndpoint(host: string): object {
    let o = this.hostOwners.get(host);
    if (!o) {
      if (this.hostOwners.size >= MAX_DESTINATIONS) this.hostOwners.clear();
      o = {};
      this.hostOwners.set(host, o);
    }
    return o;
  }

  /** Clusters with their ejected endpoints and pool occupancy, for the console. */
  snapshot(): Array<{ destination: string; ejected: string[]; active: number; pending: number }> {
    const now = Date.now();
    return [...this.clusters.values()].map((c) => ({
      destination: c.key,
      ejected: c.outlier
        ? c.outlier
            .health(now)
            .filter((h) => h.ejected)
            .map((h) => h.id)
        : [],
      active: c.pool.active,
      pending: c.pool.pending,
    }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.clusters.values()].flatMap((c) => [...c.connections.values()].map((x) => x.client.close().catch(() => {}))));
  }
}

/** What every try of one call shares. */
interface CallState {
  service: string;
  cluster: Cluster;
  endpoints: Endpoint[];
  /** Endpoints tried so far: a retry goes elsewhere when it can. */
  tried: Set<string>;
  hashKey: string | null;
  fault: mesh.HttpFaultInjection | undefined;
  method: string;
  call: CallOptions;
  headers: Record<string, string>;
  /** `headers` as a flat array, for the wire (see MeshClient.wire). */
  wire: string[];
  body: string | Buffer | undefined;
  /** The trace context the tries' client spans continue (null when tracing is off). */
  parent: TraceContext | null;
}

interface AttemptResult {
  outcome: mesh.AttemptOutcome;
  endpoint: Endpoint | null;
  flags: string;
  message?: string;
  response?: DispatchResponse;
}

/** The caller's headers with lower-case names (route matching and header operations expect them). */
function lowerCased(headers: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!headers) return out;
  for (const name in headers) {
    const value = headers[name];
    const lower = name.toLowerCase();
    if (value === undefined || lower === '__proto__' || !Object.hasOwn(headers, name)) continue;
    out[lower] = out[lower] === undefined ? value : `${out[lower]}, ${value}`;
  }
  return out;
}

/** Registry instances as labelled endpoints (`version` from the instance's metadata or first tag). */
function endpointsOf(instances: readonly Instance[]): Endpoint[] {
  return instances.map((i) => ({ id: i.id, labels: { ...i.meta, version: mesh.instanceVersion(i) }, instance: i }));
}

function decode<T>(raw: Buffer, headers: Record<string, string | string[] | undefined>, asRaw?: boolean): T {
  if (asRaw) return raw as T;
  if (raw.length === 0) return undefined as T;
  const text = raw.toString('utf8');
  const type = headers['content-type'];
  if (typeof type === 'string' && type.includes('json')) {
    try {
      return JSON.parse(text) as T;
    } catch {
      return text as T;
    }
  }
  return text as T;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function transportError(err: unknown): mesh.TransportError {
  const e = err as Error & { code?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code ?? '';
  if (
    code === 'ECONNREFUSED' ||
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'EHOSTUNREACH' ||
    code === 'ENOTFOUND' ||
    code === 'ERR_TLS_CERT_ALTNAME_INVALID' ||
    /certificate|identity/i.test(e.message ?? '')
  ) {
    return 'connect-failure';
  }
  if (
    e instanceof TryTimeoutError ||
    e.name === 'TimeoutError' ||
    e.name === 'AbortError' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT' ||
    code === 'UND_ERR_ABORTED'
  ) {
    return 'timeout';
  }
  return 'reset';
}

function describe(err: unknown, timeoutMs: number): string {
  const e = err as Error & { code?: string; cause?: { code?: string } };
  const kind = transportError(err);
  if (kind === 'timeout') return `no answer within ${Math.round(timeoutMs)} ms`;
  return e.code ?? e.cause?.code ?? e.message;
}
