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
 */
import { mesh } from '@concord/core';
import { SpanKind } from '@opentelemetry/api';
import { Client, type Dispatcher, errors as undiciErrors } from 'undici';
import type { Instance, RegistryClient } from '../registry-client/client.js';
import type { Logger } from '../service-kit/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { serviceFqdn } from '../telemetry/metrics.js';
import type { Telemetry } from '../telemetry/tracing.js';
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
const MAX_RESPONSE_BYTES = 4 * 1_048_576;
const MAX_MIRRORS_IN_FLIGHT = 64;
const OUTLIER_SWEEP_MIN_MS = 100;
const KEEP_ALIVE_MS = 30_000;

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
}

interface Compiled {
  version: number;
  routes: Map<string, mesh.RouteMatcher>;
  rules: mesh.DestinationRule[];
}

export class MeshClient {
  private compiled: Compiled = { version: -1, routes: new Map(), rules: [] };
  private readonly clusters = new Map<string, Cluster>();
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

  async request<T = unknown>(service: string, call: CallOptions): Promise<CallResult<T>> {
    const cfg = this.config();
    const method = call.method ?? (call.body === undefined ? 'GET' : 'POST');
    const baseHeaders: Record<string, string> = { ...call.headers };
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
    const endpoints: Endpoint[] = watch.routable.map((i) => ({ id: i.id, labels: { ...i.meta, version: i.meta.version ?? i.tags[0] ?? '' }, instance: i }));
    const resolved = mesh.resolveDestination(cfg.rules, destination, endpoints);
    if (!resolved.ok) throw new UpstreamError(service, 'no-instances', resolved.error);
    const cluster = this.cluster(host, destination.subset, resolved.policy, resolved.endpoints);

    const headers = mesh.applyHeaderLayers(baseHeaders, [picked?.headers?.request, route?.headers?.request]) as Record<string, string>;
    headers['x-concord-source-workload'] = this.opts.service ?? 'unknown';
    const mirror = route ? mesh.mirrorDestination(route, this.random) : null;
    if (mirror) this.mirror(mirror, method, call.path, headers, body);

    const retryPolicy = mesh.resolveRetryPolicy(route?.retries);
    const start = Date.now();
    const deadline = mesh.callDeadline(start, route?.timeoutMs ?? call.timeoutMs ?? DEFAULT_TIMEOUT_MS, call.deadlineMs);
    const hashKey = mesh.hashKeyOf(cluster.lb, req, this.opts.service);
    const tried = new Set<string>();
    let retrying = false;
    let lastOutcome: mesh.AttemptOutcome = { error: 'connect-failure' };
    let lastEndpoint: Endpoint | null = null;
    try {
      for (let attempt = 1; ; attempt++) {
        const now = Date.now();
        const budget = mesh.attemptBudget(now, deadline, retryPolicy.perTryTimeoutMs);
        if (budget.timeoutMs <= 0) {
          this.observe(service, host, lastEndpoint, 504, start, 'UT');
          throw new UpstreamError(service, 'timeout', `${service} did not answer within the call's deadline`, { attempts: attempt - 1, flags: 'UT' });
        }
        const r = await this.attempt(service, cluster, resolved.endpoints as Endpoint[], tried, hashKey, route?.fault, method, call, headers, body, budget, attempt);
        lastOutcome = r.outcome;
        lastEndpoint = r.endpoint;
        const final = 'status' in r.outcome && !mesh.isRetriable(retryPolicy, r.outcome);
        if (final && r.response) {
          const res = r.response;
          const responseHeaders = mesh.applyHeaderLayers(res.headers as mesh.HeaderValues, [picked?.headers?.response, route?.headers?.response]);
          this.observe(service, host, r.endpoint, res.status, start, r.flags);
          return {
            status: res.status,
            headers: responseHeaders as CallResult['headers'],
            body: this.decode<T>(res.raw, res.headers, call.raw),
            instance: r.endpoint?.instance ?? null,
            attempts: attempt,
            flags: r.flags,
          };
        }
        const d = mesh.decideRetry(retryPolicy, attempt, r.outcome, mesh.remainingMs(deadline, Date.now()), this.random);
        let allowed = d.retry;
        if (allowed && !retrying) {
          const b = mesh.beginRetry(cluster.limits, cluster.pool);
          cluster.pool = b.state;
          allowed = b.allowed;
          retrying = b.allowed;
        }
        if (!allowed) return this.finish<T>(service, host, r, start, attempt, call.raw);
        this.opts.metrics?.retries.inc({ destination_service: serviceFqdn(host), reason: 'status' in r.outcome ? String(r.outcome.status) : r.outcome.error });
        if (d.retry && d.delayMs > 0) await sleep(d.delayMs);
      }
    } finally {
      if (retrying) cluster.pool = mesh.endRetry(cluster.pool);
      void lastOutcome;
    }
  }

  /** The final answer after the last try: a response, or the transport failure. */
  private finish<T>(service: string, host: string, r: AttemptResult, start: number, attempts: number, raw?: boolean): CallResult<T> {
    if (r.response) {
      this.observe(service, host, r.endpoint, r.response.status, start, r.flags);
      return { status: r.response.status, headers: r.response.headers, body: this.decode<T>(r.response.raw, r.response.headers, raw), instance: r.endpoint?.instance ?? null, attempts, flags: r.flags };
    }
    const o = r.outcome as { error: mesh.TransportError };
    const kind: UpstreamFailure = o.error === 'timeout' ? 'timeout' : o.error === 'overflow' ? 'overflow' : o.error === 'reset' ? 'reset' : r.endpoint ? 'connect' : 'no-instances';
    this.observe(service, host, r.endpoint, kind === 'timeout' ? 504 : 503, start, r.flags);
    throw new UpstreamError(service, kind, r.message ?? `${service}: ${kind}`, { attempts, flags: r.flags });
  }

  private async attempt(
    service: string,
    cluster: Cluster,
    endpoints: Endpoint[],
    tried: Set<string>,
    hashKey: string | null,
    fault: mesh.HttpFaultInjection | undefined,
    method: string,
    call: CallOptions,
    headers: Record<string, string>,
    body: string | Buffer | undefined,
    budget: mesh.AttemptBudget,
    attempt: number,
  ): Promise<AttemptResult> {
    const f = mesh.decideFault(fault, this.random);
    const tryDeadline = budget.deadlineMs;
    if (f.delayMs > 0) {
      const wait = Math.min(f.delayMs, Math.max(0, tryDeadline - Date.now()));
      await sleep(wait);
      if (Date.now() >= tryDeadline) return { outcome: { error: 'timeout' }, endpoint: null, flags: 'DI,UT', message: `${service}: injected delay outlived the try` };
    }
    if (f.abortStatus !== null) {
      const problem = { type: 'https://concord.dev/problems/fault-injected', title: 'Fault Injected', status: f.abortStatus, detail: `fault injected by the ${service} VirtualService` };
      return {
        outcome: { status: f.abortStatus, injected: true },
        endpoint: null,
        flags: f.delayMs > 0 ? 'DI,FI' : 'FI',
        response: { status: f.abortStatus, headers: { 'content-type': 'application/problem+json', 'x-concord-fault': 'abort' }, raw: Buffer.from(JSON.stringify(problem)) },
      };
    }
    const now = Date.now();
    if (cluster.outlier && now - cluster.lastSweepMs >= Math.max(OUTLIER_SWEEP_MIN_MS, cluster.outlierIntervalMs)) {
      cluster.lastSweepMs = now;
      this.recordOutlierEvents(cluster, cluster.outlier.sweep(now));
    }
    const candidates = cluster.outlier ? cluster.outlier.available(endpoints, now) : endpoints;
    const ep = cluster.balancer.pick(candidates, { exclude: tried, hashKey, load: (id) => mesh.inFlight(cluster.pool, id) });
    if (!ep) return { outcome: { error: 'connect-failure' }, endpoint: null, flags: 'UH', message: `no healthy instance of ${cluster.host}` };
    tried.add(ep.id);

    const grant = await this.acquire(cluster, ep.id, tryDeadline);
    if (grant === 'overflow') {
      this.opts.metrics?.poolOverflows.inc({ destination_service: serviceFqdn(cluster.host) });
      return { outcome: { error: 'overflow' }, endpoint: ep, flags: 'UO', message: `${cluster.host}: connection pool overflow (503 at once)` };
    }
    if (grant === 'timeout') return { outcome: { error: 'timeout' }, endpoint: ep, flags: 'UT', message: `${cluster.host}: no connection before the deadline` };
    const conn = this.connection(cluster, ep, grant);
    const sendHeaders: Record<string, string> = { ...headers };
    const timeoutValue = mesh.timeoutHeaderValue(tryDeadline, Date.now());
    if (timeoutValue !== null) sendHeaders[mesh.TIMEOUT_HEADER] = timeoutValue;
    const tel = this.opts.telemetry;
    const span = tel?.enabled
      ? tel.start(`${method} ${cluster.host}`, null, SpanKind.CLIENT, {
          'http.request.method': method,
          'server.address': cluster.host,
          'url.path': call.path.split('?')[0] as string,
          'concord.endpoint': ep.id,
          'concord.attempt': attempt,
        })
      : null;
    if (span && tel) tel.inject(span.ctx, sendHeaders);
    let result: AttemptResult;
    let reusable = true;
    const timeoutMs = Math.max(1, tryDeadline - Date.now());
    try {
      const res = await conn.client.request({
        path: call.path,
        method: method as Dispatcher.HttpMethod,
        headers: sendHeaders,
        body,
        signal: call.signal ? AbortSignal.any([call.signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const raw = await readLimited(res.body, MAX_RESPONSE_BYTES);
      if (String(res.headers.connection ?? '').toLowerCase() === 'close') reusable = false;
      result = { outcome: { status: res.statusCode }, endpoint: ep, flags: '-', response: { status: res.statusCode, headers: res.headers, raw } };
      span?.span.setAttribute('http.response.status_code', res.statusCode);
      if (res.statusCode >= 500) span?.span.setStatus({ code: 2 });
    } catch (err) {
      reusable = false;
      const kind = transportError(err);
      result = { outcome: { error: kind }, endpoint: ep, flags: kind === 'timeout' ? 'UT' : kind === 'connect-failure' ? 'UF' : 'UC', message: `${cluster.host} (${ep.id}): ${describe(err, timeoutMs)}` };
      span?.span.setStatus({ code: 2, message: result.message });
    } finally {
      span?.span.end();
    }
    this.release(cluster, ep.id, conn.id, reusable && !cluster.retired && conn.generation === this.tlsGeneration);
    if (cluster.outlier) this.recordOutlierEvents(cluster, cluster.outlier.record(ep.id, result.outcome, Date.now()));
    // A try that was delayed by a fault and then sent still reports the delay (Envoy's DI).
    if (f.delayMs > 0) result.flags = result.flags === '-' ? 'DI' : `DI,${result.flags}`;
    return result;
  }

  /** Gets a pool connection for `endpointId`: at once, after queueing, or not at all. */
  private async acquire(cluster: Cluster, endpointId: string, deadlineMs: number): Promise<{ connectionId: number; open: boolean } | 'overflow' | 'timeout'> {
    const a = mesh.acquire(cluster.limits, cluster.pool, endpointId);
    cluster.pool = a.state;
    if (a.grant.kind === 'dispatch') return a.grant;
    if (a.grant.kind === 'reject') return 'overflow';
    return new Promise((resolve) => {
      const list = cluster.waiters.get(endpointId) ?? [];
      const waiter: Waiter = {
        resolve: (h) => {
          clearTimeout(timer);
          resolve(h);
        },
      };
      const timer = setTimeout(() => {
        const l = cluster.waiters.get(endpointId);
        const i = l?.indexOf(waiter) ?? -1;
        if (l && i >= 0) l.splice(i, 1);
        cluster.pool = mesh.abandon(cluster.pool, endpointId);
        resolve('timeout');
      }, Math.max(0, deadlineMs - Date.now()));
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
      void c?.client.close().catch(() => {});
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
      const secure = this.useTls(cluster, ep);
      const tls = this.tls;
      const expected = mesh.spiffeId(cluster.host);
      const origin = `${secure ? 'https' : 'http'}://${ep.instance.address.includes(':') ? `[${ep.instance.address}]` : ep.instance.address}:${ep.instance.port}`;
      const client = new Client(origin, {
        pipelining: 1,
        keepAliveTimeout: KEEP_ALIVE_MS,
        connect: secure && tls
          ? {
              timeout: 2000,
              key: tls.keyPem,
              cert: tls.certPem,
              ca: tls.caPem,
              // Secure naming: the server must hold the identity of the service we meant to call.
              checkServerIdentity: (_host: string, cert: { subjectaltname?: string }) =>
                spiffeOfCert(cert) === expected ? undefined : new Error(`server identity ${spiffeOfCert(cert) ?? 'none'} is not ${expected}`),
            }
          : { timeout: 2000 },
      });
      c = { client, endpointId: ep.id, generation: this.tlsGeneration };
      cluster.connections.set(grant.connectionId, c);
    }
    return { id: grant.connectionId, client: c.client, generation: c.generation };
  }

  /** Auto mTLS: TLS when the endpoint has a mesh identity, we have one, and no rule disables it. */
  private useTls(cluster: Cluster, ep: Endpoint): boolean {
    if (!this.tls) return false;
    if (cluster.tlsMode === 'DISABLE' || cluster.tlsMode === 'SIMPLE') return false;
    if (cluster.tlsMode === 'ISTIO_MUTUAL' || cluster.tlsMode === 'MUTUAL') return true;
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
      };
      this.clusters.set(key, c);
      // New limits take effect at once (Envoy builds a new connection pool for a changed
      // cluster and drains the old one): requests in flight finish on the old cluster.
      if (old) this.retire(old);
    }
    const ids = endpoints.map((e) => e.id).join(',');
    if (c.outlier && ids !== c.lastEndpointIds) c.outlier.setEndpoints(endpoints.map((e) => e.id), Date.now());
    c.lastEndpointIds = ids;
    return c;
  }

  /** Closes the idle connections of a replaced cluster; busy ones close when released. */
  private retire(cluster: Cluster): void {
    cluster.retired = true;
    for (const [endpointId, ep] of cluster.pool.endpoints) {
      for (const conn of ep.connections) {
        if (conn.busy) continue;
        cluster.pool = mesh.connectionClosed(cluster.limits, cluster.pool, endpointId, conn.id).state;
        const c = cluster.connections.get(conn.id);
        cluster.connections.delete(conn.id);
        void c?.client.close().catch(() => {});
      }
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

  /** Fire and forget: a copy of the request to the mirror destination; its answer is ignored. */
  private mirror(dest: mesh.Destination, method: string, path: string, headers: Record<string, string>, body: string | Buffer | undefined): void {
    if (this.mirrorsInFlight >= MAX_MIRRORS_IN_FLIGHT) return;
    this.mirrorsInFlight++;
    const watch = this.opts.registry.watch(dest.host);
    const cfg = this.config();
    const endpoints = watch.routable.map((i) => ({ id: i.id, labels: { ...i.meta, version: i.meta.version ?? '' }, instance: i }));
    const resolved = mesh.resolveDestination(cfg.rules, dest, endpoints);
    const ep = resolved.ok ? resolved.endpoints[Math.floor(this.random() * resolved.endpoints.length)] : undefined;
    if (!ep) {
      this.mirrorsInFlight--;
      return;
    }
    const origin = `http://${ep.instance.address}:${ep.instance.port}`;
    const client = new Client(origin, { pipelining: 1, connect: { timeout: 1000 } });
    client
      .request({ path, method: method as Dispatcher.HttpMethod, headers: { ...headers, 'x-concord-mirror': '1' }, body, headersTimeout: 5000, bodyTimeout: 5000 })
      .then((r) => r.body.dump())
      .catch(() => {})
      .finally(() => {
        this.mirrorsInFlight--;
        void client.close().catch(() => {});
      });
  }

  private decode<T>(raw: Buffer, headers: Record<string, string | string[] | undefined>, asRaw?: boolean): T {
    if (asRaw) return raw as T;
    if (raw.length === 0) return undefined as T;
    const text = raw.toString('utf8');
    if (String(headers['content-type'] ?? '').includes('json')) {
      try {
        return JSON.parse(text) as T;
      } catch {
        return text as T;
      }
    }
    return text as T;
  }

  private observe(service: string, host: string, ep: Endpoint | null, status: number, startMs: number, flags: string): void {
    const m = this.opts.metrics;
    if (!m) return;
    m.observeRequest(
      {
        reporter: 'source',
        source_workload: this.opts.service ?? 'unknown',
        source_version: this.opts.version ?? 'unknown',
        source_principal: this.tls ? this.tls.spiffeId : 'unknown',
        destination_workload: host,
        destination_service: serviceFqdn(host),
        destination_service_name: service,
        destination_version: ep?.labels.version ?? 'unknown',
        destination_principal: ep?.instance.meta.mtls === '1' ? mesh.spiffeId(host) : 'unknown',
        request_protocol: 'http',
        response_code: String(status),
        response_flags: flags,
        connection_security_policy: ep && this.tls && ep.instance.meta.mtls === '1' ? 'mutual_tls' : 'unknown',
      },
      Date.now() - startMs,
    );
  }

  /** Clusters with their ejected endpoints and pool occupancy, for the console. */
  snapshot(): Array<{ destination: string; ejected: string[]; active: number; pending: number }> {
    const now = Date.now();
    return [...this.clusters.values()].map((c) => ({
      destination: c.key,
      ejected: c.outlier ? c.outlier.health(now).filter((h) => h.ejected).map((h) => h.id) : [],
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

interface AttemptResult {
  outcome: mesh.AttemptOutcome;
  endpoint: Endpoint | null;
  flags: string;
  message?: string;
  response?: { status: number; headers: Record<string, string | string[] | undefined>; raw: Buffer };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function readLimited(body: Dispatcher.ResponseData['body'], maxBytes: number): Promise<Buffer> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      body.destroy();
      throw new Error(`response larger than ${maxBytes} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
}

function transportError(err: unknown): mesh.TransportError {
  const e = err as Error & { code?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code ?? '';
  if (code === 'ECONNREFUSED' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'EHOSTUNREACH' || code === 'ENOTFOUND' || code === 'ERR_TLS_CERT_ALTNAME_INVALID' || /certificate|identity/i.test(e.message ?? '')) {
    return 'connect-failure';
  }
  if (e.name === 'TimeoutError' || e.name === 'AbortError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || err instanceof undiciErrors.RequestAbortedError) {
    return 'timeout';
  }
  return 'reset';
}

function describe(err: unknown, timeoutMs: number): string {
  const e = err as Error & { code?: string; cause?: { code?: string } };
  const kind = transportError(err);
  if (kind === 'timeout') return `no answer within ${timeoutMs} ms`;
  return e.code ?? e.cause?.code ?? e.message;
}
