/**
 * The service kit: every Concord process is created here from a name, a version and its routes.
 * It owns the HTTP server, configuration, logging, health, problem+json errors, registration
 * in the registry and graceful shutdown.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { createServer as createHttpServer } from 'node:http';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import FindMyWay from 'find-my-way';
import { MeshClient } from '../mesh/client.js';
import { MeshConfigClient } from '../mesh/config-client.js';
import { type WorkloadIdentity, WorkloadIdentity as Identity, httpIssuer } from '../tls/identity.js';
import { InboundListener } from '../tls/inbound.js';
import { peerPrincipal } from '../tls/inbound.js';
import { mesh as meshcore } from '@concord/core';
import { EVENT_LOOP_RESOLUTION_MS, Metrics, serviceFqdn } from '../telemetry/metrics.js';
import { SAMPLER_VARS, SCHEDULED_DELAY_MS, SpanStatusCode, Telemetry, type TraceContext, type Span, idsOf } from '../telemetry/tracing.js';
import { SpanKind } from '@opentelemetry/api';
import { RegistryClient, type Registration } from '../registry-client/client.js';
import { Faults } from './faults.js';
import {
  type ConfigOf,
  type Schema,
  boolVar,
  durationVar,
  exitOnConfigError,
  intVar,
  loadConfig,
  portVar,
  stringVar,
  urlVar,
  enumVar,
} from './config.js';
import { createLogger, type Logger } from './logger.js';
import { HttpError, PROBLEM_CONTENT_TYPE, type Problem, isProblem, problem } from './problem.js';
import { requestIdFrom } from './request-id.js';
import { lazyChildLoggerFactory } from './lazy-logger.js';
import { compileValidator, fieldErrors } from './validation.js';
import { isTransactionConflict } from '../store/store.js';

/** Variables every process reads. */
export const kitSchema = {
  host: stringVar('CONCORD_HOST', '127.0.0.1'),
  port: portVar('CONCORD_SERVICE_PORT', 0),
  controlPort: portVar('CONCORD_CONTROL_PORT', 7700),
  controlUrl: urlVar('CONCORD_CONTROL_URL', ''),
  dataDir: stringVar('CONCORD_DATA_DIR', '.concord'),
  instanceId: stringVar('CONCORD_INSTANCE_ID', '', /^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, ".", "_" or "-", at most 64'),
  version: stringVar('CONCORD_SERVICE_VERSION', 'v1', /^[A-Za-z0-9._-]{1,32}$/, 'a short version label such as v1'),
  logLevel: enumVar('CONCORD_LOG_LEVEL', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const),
  checkIntervalMs: durationVar('CONCORD_CHECK_INTERVAL', 1000, 100, 600_000),
  eventLoopResolutionMs: durationVar('CONCORD_EVENT_LOOP_RESOLUTION', EVENT_LOOP_RESOLUTION_MS, 1, 10_000),
  checkTimeoutMs: durationVar('CONCORD_CHECK_TIMEOUT', 1000, 50, 600_000),
  checkFailuresBeforeCritical: intVar('CONCORD_CHECK_FAILURES_BEFORE_CRITICAL', 3, 1, 100),
  deregisterAfterMs: durationVar('CONCORD_DEREGISTER_CRITICAL_AFTER', 60_000, 1000, 86_400_000),
  shutdownTimeoutMs: durationVar('CONCORD_SHUTDOWN_TIMEOUT', 8000, 0, 600_000),
  bodyLimitBytes: intVar('CONCORD_BODY_LIMIT_BYTES', 1_048_576, 1024, 64 * 1_048_576),
  register: boolVar('CONCORD_REGISTER', true),
  testFaults: boolVar('CONCORD_TEST_FAULTS', false),
  /** Proves this process may hold its service's identity (the supervisor sets it). */
  caToken: stringVar('CONCORD_CA_TOKEN', '', /^[0-9a-f]{64}$/, '64 hexadecimal characters (set by the supervisor)'),
  tracing: boolVar('CONCORD_TRACING', true),
  ...SAMPLER_VARS,
  // Checked here only, so that a collector's address without its scheme stops start-up instead
  // of every export failing later; tracesEndpoint() reads them as OpenTelemetry's SDK does.
  otlpEndpoint: urlVar('OTEL_EXPORTER_OTLP_ENDPOINT', ''),
  otlpTracesEndpoint: urlVar('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', ''),
  exporter: enumVar('OTEL_TRACES_EXPORTER', 'otlp', meshcore.TRACES_EXPORTERS),
  /** Milliseconds, as OpenTelemetry's batch span processor reads it. */
  scheduleDelayMs: intVar('OTEL_BSP_SCHEDULE_DELAY', SCHEDULED_DELAY_MS, 0, 60_000),
};

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's server span and its context: pass `trace.ctx` to outbound calls. */
    trace?: { span: Span; ctx: TraceContext; startNs: bigint };
    /** The caller's deadline (epoch ms) from x-concord-timeout-ms: pass it to outbound calls. */
    deadlineMs?: number;
  }
}

/** Paths that are neither traced nor counted as traffic (probes and scrapes). */
const UNTRACED = new Set(['/health/live', '/health/ready', '/metrics']);
const SOURCE_WORKLOAD = /^[a-z][a-z0-9-]{0,62}$/;
export type KitConfig = ConfigOf<typeof kitSchema>;

export interface ServiceContext<C> {
  readonly name: string;
  readonly version: string;
  readonly instanceId: string;
  /** `<service>@<version>#<instance-id>`, sent as `x-served-by`. */
  readonly servedBy: string;
  readonly config: C;
  readonly kit: KitConfig;
  readonly log: Logger;
  readonly app: FastifyInstance;
  /** Null when registration is turned off (the control plane itself, unit tests). */
  readonly registry: RegistryClient | null;
  /** Every call to another service goes through this (throws when there is no registry). */
  readonly mesh: MeshClient;
  /** Test-only crash points (see faults.ts). */
  readonly faults: Faults;
  /** This workload's mTLS identity, or null when it runs without one. */
  readonly identity: WorkloadIdentity | null;
  /** The mesh configuration pushed by the control plane (null for the control plane itself). */
  readonly meshConfig: MeshConfigClient | null;
  /** Workload labels, as Istio selectors see them: app and version. */
  readonly labels: Record<string, string>;
  readonly telemetry: Telemetry;
  readonly metrics: Metrics;
  /** Where this instance keeps its files: `<data dir>/<service>`. */
  readonly dataDir: string;
  /** Runs at shutdown after in-flight requests finish, in reverse order of registration. */
  onClose(fn: () => Promise<void> | void): void;
  /** Runs when shutdown begins, before in-flight requests are awaited: long-lived streams end here. */
  onDrain(fn: () => void): void;
  /** Extra metadata published in the registry (Meta). */
  meta: Record<string, string>;
}

export interface ServiceDefinition<S extends Schema> {
  name: string;
  /** Extra configuration variables of this service. */
  config?: S;
  /** Which environment variable sets the listening port (default CONCORD_SERVICE_PORT). */
  portEnv?: string;
  /** False for a process that must not register over HTTP (the control plane itself). */
  register?: boolean;
  /** False for a process that must not export spans (the trace store itself). */
  tracing?: boolean;
  /** Services this one calls; their passing instances are watched. */
  dependsOn?: string[];
  /** Registers routes, opens stores; runs before listening. */
  setup(ctx: ServiceContext<ConfigOf<S>>): Promise<void> | void;
  /** Runs after the server listens (and before registration). */
  afterListen?(ctx: ServiceContext<ConfigOf<S>>, port: number): Promise<void> | void;
  /** The identity provider of a process that is its own CA (the control plane). */
  identity?(ctx: { log: Logger; dataDir: string; config: ConfigOf<S> }): Promise<WorkloadIdentity | null>;
}

export interface RunningService<C> {
  ctx: ServiceContext<C>;
  port: number;
  url: string;
  stop(reason?: string): Promise<void>;
}

function controlUrlOf(kit: KitConfig): string {
  return kit.controlUrl || `http://127.0.0.1:${kit.controlPort}`;
}

export function resolveKitConfig(name: string, env: NodeJS.ProcessEnv, portEnv?: string): KitConfig {
  const schema = portEnv ? { ...kitSchema, port: portVar(portEnv, 0) } : kitSchema;
  const kit = loadConfig(schema, env) as KitConfig;
  if (!kit.instanceId) kit.instanceId = `${name}-${randomBytes(3).toString('hex')}`;
  return kit;
}

export interface KitState {
  ready: boolean;
  draining: boolean;
  startedAtMs: number;
  /** HTTP requests being answered now. */
  inFlight: number;
  idleWaiters: Array<() => void>;
}

/** Builds the Fastify app with Concord's conventions; exported for tests of routes alone. */
export function buildApp(opts: {
  log: Logger;
  servedBy: string;
  bodyLimitBytes: number;
  telemetry?: Telemetry;
  metrics?: Metrics;
  workload?: { name: string; version: string };
  /** Inbound AuthorizationPolicy: null to allow, else why the request is denied. */
  authorize?: (req: { principal: string | null; method: string; path: string }) => string | null;
}): {
  app: FastifyInstance;
  state: KitState;
} {
  const state: KitState = { ready: false, draining: false, startedAtMs: Date.now(), inFlight: 0, idleWaiters: [] };
  const app = Fastify({
    loggerInstance: opts.log as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    bodyLimit: opts.bodyLimitBytes,
    genReqId: (req) => requestIdFrom(req.headers['x-request-id']),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // The HTTP server never listens itself: the inbound listener (tls/inbound.ts) accepts
    // connections, sorts TLS from plaintext, and hands them over.
    serverFactory: (handler) => {
      const server = createHttpServer({ keepAliveTimeout: 65_000, requestTimeout: 120_000, headersTimeout: 60_000, maxHeaderSize: 16_384 }, handler);
      server.on('request', (_req, res) => {
        state.inFlight++;
        res.once('close', () => {
          state.inFlight--;
          if (state.inFlight === 0) for (const fn of state.idleWaiters.splice(0)) fn();
        });
      });
      return server;
    },
    routerOptions: { ignoreTrailingSlash: false, caseSensitive: true, maxParamLength: 200 },
    ajv: undefined,
  }) as unknown as FastifyInstance;
  // Request loggers (and their children with trace ids) are made only for requests that log something.
  app.setChildLoggerFactory(lazyChildLoggerFactory as unknown as Parameters<typeof app.setChildLoggerFactory>[0]);
  // JSON only: anything else is 415 rather than a string that fails validation later.
  app.removeContentTypeParser('text/plain');
  app.setValidatorCompiler(({ schema, httpPart }) => {
    const validate = compileValidator(schema as object, httpPart);
    return (data: unknown) => (validate(data) ? { value: data } : { error: Object.assign(new Error('validation'), { validation: validate.errors }) });
  });

  // A mirror of the routes, so an unmatched method can answer 405 with Allow.
  const routes = FindMyWay({ ignoreTrailingSlash: false });
  const { telemetry, metrics, workload, authorize } = opts;
  app.addHook('onRoute', (route) => {
    // A handler starts with its request's trace context active (until its first await), so
    // what it does at once (open a transaction, call out) continues the request's trace.
    if (telemetry?.enabled) {
      const handler = route.handler;
      route.handler = function traced(this: FastifyInstance, req, reply) {
        const t = req.trace;
        return t ? telemetry.with(t.ctx, () => handler.call(this, req, reply)) : handler.call(this, req, reply);
      };
    }
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const m of methods) {
      if (m === 'HEAD') continue;
      try {
        routes.on(m as 'GET', route.url, () => {});
      } catch {
        /* duplicates are Fastify's to report */
      }
    }
  });

  app.addHook('onRequest', (req, reply, done) => {
    reply.header('x-request-id', req.id);
    reply.header('x-served-by', opts.servedBy);
    const path = req.url.split('?')[0] as string;
    // The caller's remaining deadline: no work for a request that is already late.
    const deadline = meshcore.inboundDeadline(req.headers[meshcore.TIMEOUT_HEADER], Date.now());
    if (!deadline.ok) {
      done(new HttpError(400, 'bad-deadline', deadline.error, { errors: [{ path: `/headers/${meshcore.TIMEOUT_HEADER}`, message: deadline.error }] }));
      return;
    }
    if (deadline.deadlineMs <= Date.now()) {
      done(new HttpError(504, 'deadline-exceeded', 'the caller\'s deadline passed before this request started'));
      return;
    }
    if (Number.isFinite(deadline.deadlineMs)) req.deadlineMs = deadline.deadlineMs;
    // Probes and scrapes stay reachable whatever the policy (Istio serves them outside it too).
    if (authorize && !UNTRACED.has(path)) {
      const denied = authorize({ principal: peerPrincipal(req.raw.socket), method: req.method, path });
      if (denied) {
        done(new HttpError(403, 'rbac-denied', `RBAC: access denied (${denied})`));
        return;
      }
    }
    if (telemetry && !UNTRACED.has(path)) {
      const parent = telemetry.extract(req.headers);
      const route = req.routeOptions.url ?? 'unmatched';
      const { span, ctx } = telemetry.start(`${req.method} ${route}`, parent, SpanKind.SERVER, {
        'http.request.method': req.method,
        'http.route': route,
        'url.path': path,
        'concord.request_id': req.id,
      });
      req.trace = { span, ctx, startNs: process.hrtime.bigint() };
      const tp = telemetry.traceparent(ctx);
      if (tp) reply.header('traceparent', tp);
      const ids = idsOf(ctx);
      if (ids) req.log = req.log.child(ids);
      // The handler finds the context in req.trace (and active at its start, see onRoute).
      done();
      return;
    }
    done();
  });
  app.addHook('onResponse', (req, reply, done) => {
    const t = req.trace;
    if (t) {
      const code = reply.statusCode;
      t.span.setAttribute('http.response.status_code', code);
      if (code >= 500) t.span.setStatus({ code: SpanStatusCode.ERROR });
      t.span.end();
      if (metrics && workload) {
        const principal = peerPrincipal(req.raw.socket);
        const claimed = req.headers['x-concord-source-workload'];
        const source = principal ? (principal.split('/').pop() ?? 'unknown') : typeof claimed === 'string' && SOURCE_WORKLOAD.test(claimed) ? claimed : 'unknown';
        metrics.observeRequest(
          {
            reporter: 'destination',
            source_workload: source,
            source_version: 'unknown',
            source_principal: principal ? `spiffe://${principal}` : 'unknown',
            destination_workload: workload.name,
            destination_service: serviceFqdn(workload.name),
            destination_service_name: workload.name,
            destination_version: workload.version,
            destination_principal: 'unknown',
            request_protocol: 'http',
            response_code: String(code),
            response_flags: '-',
            connection_security_policy: principal ? 'mutual_tls' : 'none',
          },
          Number(process.hrtime.bigint() - t.startNs) / 1e6,
        );
      }
    }
    done();
  });
  // While draining, every answer closes its connection, so keep-alive clients let go and
  // the server can finish as soon as in-flight requests do.
  app.addHook('onSend', (_req, reply, _payload, done) => {
    if (state.draining) reply.header('connection', 'close');
    done();
  });

  app.setNotFoundHandler((req, reply) => {
    const path = (req.raw.url ?? '/').split('?')[0] ?? '/';
    const allowed: string[] = [];
    for (const m of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const) {
      if (m !== req.method && routes.find(m, path)) allowed.push(m);
    }
    if (allowed.length > 0) {
      sendProblem(reply, problem(405, 'method-not-allowed', `${req.method} is not allowed on ${path}; use ${allowed.join(', ')}`), { allow: allowed.join(', ') });
      return;
    }
    sendProblem(reply, problem(404, 'not-found', `no route for ${req.method} ${path}`));
  });

  app.setErrorHandler((err: FastifyError | HttpError | Error, req: FastifyRequest, reply: FastifyReply) => {
    const p = toProblem(err);
    if (p.status >= 500) req.log.error({ err }, 'request failed');
    else req.log.debug({ status: p.status, detail: p.detail }, 'request rejected');
    sendProblem(reply, p, err instanceof HttpError ? err.headers : {});
  });

  if (metrics) {
    app.get('/metrics', async (_req, reply) => {
      reply.type(metrics.registry.contentType);
      return metrics.registry.metrics();
    });
  }
  app.get('/health/live', async () => ({
    status: 'ok',
    pid: process.pid,
    uptimeS: Math.round((Date.now() - state.startedAtMs) / 1000),
    rssBytes: process.memoryUsage.rss(),
    heapUsedBytes: process.memoryUsage().heapUsed,
  }));
  app.get('/health/ready', async (_req, reply) => {
    if (state.ready && !state.draining) return { status: 'ready' };
    reply.code(503).type(PROBLEM_CONTENT_TYPE);
    return problem(503, 'not-ready', state.draining ? 'instance is shutting down' : 'instance is starting');
  });
  return { app, state };
}

export function sendProblem(reply: FastifyReply, p: Problem, headers: Record<string, string> = {}): void {
  for (const [k, v] of Object.entries(headers)) reply.header(k, v);
  reply.code(p.status).type(PROBLEM_CONTENT_TYPE).send(p);
}

/** Maps any thrown value to a problem; unknown errors become an opaque 500. */
export function toProblem(err: unknown): Problem {
  if (err instanceof HttpError) return err.problem;
  const e = err as FastifyError & { validation?: unknown; validationContext?: string; problem?: unknown };
  if (isProblem(e.problem)) return e.problem;
  if (Array.isArray(e.validation)) {
    const errors = fieldErrors(e.validation as never, e.validationContext);
    const first = errors[0];
    return problem(400, 'validation', first ? `${first.path} ${first.message}` : 'invalid request', { errors });
  }
  if (isTransactionConflict(err)) {
    return problem(503, 'transaction-conflict', 'the database aborted this transaction for a concurrent one (deadlock or serialization failure); retry');
  }
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return problem(413, 'body-too-large', 'the request body is larger than this service accepts');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return problem(415, 'unsupported-media-type', 'send the body as application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return problem(400, 'validation', 'the JSON body is empty', { errors: [{ path: '/body', message: 'is empty' }] });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return problem(400, 'bad-content-length', 'Content-Length does not match the body');
    case 'FST_ERR_BAD_URL':
      return problem(400, 'bad-url', 'the URL is malformed');
    case 'FST_ERR_ASYNC_CONSTRAINT':
      return problem(400, 'bad-request', 'the request could not be routed');
    default:
      break;
  }
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (e instanceof SyntaxError || (status === 400 && /JSON/i.test(e.message))) {
    return problem(400, 'malformed-json', 'the body is not valid JSON', { errors: [{ path: '/body', message: 'is not valid JSON' }] });
  }
  if (e instanceof RangeError && /call stack/i.test(e.message)) {
    return problem(400, 'malformed-json', 'the body is nested too deeply', { errors: [{ path: '/body', message: 'is nested too deeply' }] });
  }
  if (status >= 400 && status < 500) return problem(status, 'bad-request', e.message.slice(0, 200));
  return problem(500, 'internal', 'an unexpected error occurred; the request id in x-request-id finds it in the logs');
}

/**
 * Creates, starts and registers a service. Returns when it listens and is registered.
 */
export async function startService<S extends Schema>(def: ServiceDefinition<S>, env: NodeJS.ProcessEnv = process.env): Promise<RunningService<ConfigOf<S>>> {
  let kit: KitConfig;
  let config: ConfigOf<S>;
  try {
    kit = resolveKitConfig(def.name, env, def.portEnv);
    config = loadConfig((def.config ?? {}) as S, env);
  } catch (err) {
    exitOnConfigError(err, def.name);
  }
  const log = createLogger({ service: def.name, instance: kit.instanceId, version: kit.version }, kit.logLevel);
  const servedBy = `${def.name}@${kit.version}#${kit.instanceId}`;
  const telemetry = new Telemetry({ service: def.name, version: kit.version, instanceId: kit.instanceId, controlUrl: controlUrlOf(kit), env, log, enabled: kit.tracing && def.tracing !== false, exporter: kit.exporter, scheduleDelayMs: kit.scheduleDelayMs, sampler: { name: kit.sampler, ratio: kit.samplerArg } });
  const metrics = new Metrics({ service: def.name, version: kit.version, instance: kit.instanceId, eventLoopResolutionMs: kit.eventLoopResolutionMs });
  const labels = { app: def.name, version: kit.version };
  // Filled in below; the app needs the policy hook before the mesh config client exists.
  let meshConfig: MeshConfigClient | null = null;
  const { app, state } = buildApp({
    log,
    servedBy,
    bodyLimitBytes: kit.bodyLimitBytes,
    telemetry,
    metrics,
    workload: { name: def.name, version: kit.version },
    authorize: (r) => {
      if (!meshConfig) return null;
      const d = meshcore.authorize(meshConfig.config.authorizationPolicies, labels, r);
      return d.allowed ? null : d.reason;
    },
  });
  const dataDir = resolve(kit.dataDir, def.name);
  mkdirSync(dataDir, { recursive: true });
  const closers: Array<() => Promise<void> | void> = [];
  const drainers: Array<() => void> = [];
  const registry = kit.register && def.register !== false ? new RegistryClient({ controlUrl: controlUrlOf(kit), log }) : null;
  let mesh: MeshClient | null = null;
  const faults = new Faults(kit.testFaults, log);
  faults.routes(app);
  const controlUrl = controlUrlOf(kit);
  let identity: WorkloadIdentity | null = null;
  if (def.identity) identity = await def.identity({ log, dataDir, config });
  else if (kit.caToken) {
    identity = new Identity(httpIssuer(controlUrl, def.name, kit.caToken), log);
    await identity.start();
    closers.push(() => identity?.close());
  }
  meshConfig = registry ? new MeshConfigClient({ controlUrl, instanceId: kit.instanceId, log, report: () => ({ tracing: telemetry.tracingReport() }) }) : null;
  const configClient = meshConfig;
  if (configClient) {
    // Telemetry resources set this workload's trace sampling as configurations arrive.
    configClient.onChange((c) => telemetry.useSampling(meshcore.tracingSampling(c.telemetries ?? [], labels)));
    configClient.start();
    closers.push(() => configClient.close());
  }
  const ctx: ServiceContext<ConfigOf<S>> = {
    name: def.name,
    version: kit.version,
    instanceId: kit.instanceId,
    servedBy,
    config,
    kit,
    log,
    app,
    registry,
    get mesh(): MeshClient {
      if (!registry) throw new Error(`${def.name} has no registry, so it cannot call other services`);
      if (!mesh) {
        mesh = new MeshClient({ registry, log, source: servedBy, identity, config: configClient, service: def.name, version: kit.version, telemetry, metrics });
        closers.unshift(() => mesh?.close());
      }
      return mesh;
    },
    faults,
    identity,
    meshConfig: configClient,
    labels,
    telemetry,
    metrics,
    dataDir,
    meta: {},
    onClose: (fn) => closers.push(fn),
    onDrain: (fn) => drainers.push(fn),
  };
  for (const dep of def.dependsOn ?? []) registry?.watch(dep);

  await def.setup(ctx);
  await app.ready();
  // The first configuration before the first connection: a STRICT workload must not accept
  // plaintext in the moment between listening and learning that it is STRICT.
  if (configClient) await configClient.ready(2000);
  const inbound = new InboundListener(app.server, identity, {
    mode: () => (configClient ? meshcore.peerAuthenticationMode(configClient.config.peerAuthentications, labels).mode : 'PERMISSIVE'),
  });
  const port = await inbound.listen(kit.port, kit.host);
  const host = kit.host.includes(':') ? `[${kit.host}]` : kit.host;
  const url = `http://${host}:${port}`;
  await def.afterListen?.(ctx, port);
  state.ready = true;

  const registration: Registration = {
    ID: kit.instanceId,
    Name: def.name,
    Address: kit.host,
    Port: port,
    Tags: [kit.version],
    Meta: {
      version: kit.version,
      pid: String(process.pid),
      startedAt: new Date(state.startedAtMs).toISOString(),
      ...(identity ? { mtls: '1' } : {}),
      ...ctx.meta,
    },
    Check: {
      CheckID: `service:${kit.instanceId}`,
      Name: `${def.name} ready`,
      // With an identity the check speaks mTLS too, so it keeps working under STRICT.
      HTTP: `${identity ? 'https' : 'http'}://${host}:${port}/health/ready`,
      Interval: `${kit.checkIntervalMs}ms`,
      Timeout: `${kit.checkTimeoutMs}ms`,
      DeregisterCriticalServiceAfter: `${kit.deregisterAfterMs}ms`,
      // Timeouts (a busy instance) are tolerated this many times in a row; a refused
      // connection (a dead one) or a 503 (draining) is critical at once.
      FailuresBeforeCritical: kit.checkFailuresBeforeCritical,
    },
  };
  if (registry) await registry.registerSelf(registration);
  log.info({ url, port, mtls: identity !== null }, `${def.name} listening`);

  let stopping: Promise<void> | null = null;
  const stop = (reason = 'stop'): Promise<void> => {
    if (stopping) return stopping;
    stopping = (async () => {
      log.info({ reason }, 'shutting down');
      state.draining = true;
      for (const fn of drainers) {
        try {
          fn();
        } catch (err) {
          log.error({ err }, 'drain hook failed');
        }
      }
      // Leave the registry first so callers stop picking this instance, then stop accepting
      // and let in-flight requests finish, up to the bound.
      if (registry) await registry.deregisterSelf(1000).catch((err) => log.warn({ err }, 'deregister failed'));
      inbound.close();
      app.server.closeIdleConnections();
      const drained = await Promise.race([
        state.inFlight === 0 ? Promise.resolve(true) : new Promise<boolean>((r) => state.idleWaiters.push(() => r(true))),
        new Promise<boolean>((r) => setTimeout(() => r(false), kit.shutdownTimeoutMs).unref()),
      ]);
      if (!drained) log.warn({ shutdownTimeoutMs: kit.shutdownTimeoutMs, inFlight: state.inFlight }, 'requests still running at the shutdown bound; closing their connections');
      app.server.closeAllConnections();
      await app.close();
      for (const fn of closers.reverse()) {
        try {
          await fn();
        } catch (err) {
          log.error({ err }, 'close hook failed');
        }
      }
      registry?.close();
      await telemetry.shutdown();
      log.info('stopped');
    })();
    return stopping;
  };
  return { ctx, port, url, stop };
}

/**
 * Entry point for a service process: starts it, tells a supervising parent the port over IPC,
 * and stops gracefully on SIGTERM/SIGINT (exit 0).
 */
export function runService<S extends Schema>(def: ServiceDefinition<S>): void {
  startService(def)
    .then((svc) => {
      process.send?.({ type: 'listening', service: def.name, instanceId: svc.ctx.instanceId, port: svc.port, url: svc.url });
      const onSignal = (sig: string) => {
        svc.stop(sig).then(
          () => process.exit(0),
          (err) => {
            svc.ctx.log.fatal({ err }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.once('SIGTERM', () => onSignal('SIGTERM'));
      process.once('SIGINT', () => onSignal('SIGINT'));
      process.on('disconnect', () => onSignal('parent-gone'));
    })
    .catch((err) => {
      process.stderr.write(`${def.name}: failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    });
}
