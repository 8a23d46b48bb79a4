/**
 * The service kit: every Concord process is created here from a name, a version and its routes.
 * It owns the HTTP server, configuration, logging, health, problem+json errors, registration
 * in the registry and graceful shutdown.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import FindMyWay from 'find-my-way';
import { MeshClient } from '../mesh/client.js';
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
import { compileValidator, fieldErrors } from './validation.js';

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
  checkTimeoutMs: durationVar('CONCORD_CHECK_TIMEOUT', 1000, 50, 600_000),
  checkFailuresBeforeCritical: intVar('CONCORD_CHECK_FAILURES_BEFORE_CRITICAL', 3, 1, 100),
  deregisterAfterMs: durationVar('CONCORD_DEREGISTER_CRITICAL_AFTER', 60_000, 1000, 86_400_000),
  shutdownTimeoutMs: durationVar('CONCORD_SHUTDOWN_TIMEOUT', 8000, 0, 600_000),
  bodyLimitBytes: intVar('CONCORD_BODY_LIMIT_BYTES', 1_048_576, 1024, 64 * 1_048_576),
  register: boolVar('CONCORD_REGISTER', true),
  testFaults: boolVar('CONCORD_TEST_FAULTS', false),
};
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
  /** Where this instance keeps its files: `<data dir>/<service>`. */
  readonly dataDir: string;
  /** Runs at shutdown after in-flight requests finish, in reverse order of registration. */
  onClose(fn: () => Promise<void> | void): void;
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
  /** Services this one calls; their passing instances are watched. */
  dependsOn?: string[];
  /** Registers routes, opens stores; runs before listening. */
  setup(ctx: ServiceContext<ConfigOf<S>>): Promise<void> | void;
  /** Runs after the server listens (and before registration). */
  afterListen?(ctx: ServiceContext<ConfigOf<S>>, port: number): Promise<void> | void;
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

/** Builds the Fastify app with Concord's conventions; exported for tests of routes alone. */
export function buildApp(opts: { log: Logger; servedBy: string; bodyLimitBytes: number }): {
  app: FastifyInstance;
  state: { ready: boolean; draining: boolean; startedAtMs: number };
} {
  const state = { ready: false, draining: false, startedAtMs: Date.now() };
  const app = Fastify({
    loggerInstance: opts.log as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    bodyLimit: opts.bodyLimitBytes,
    genReqId: (req) => requestIdFrom(req.headers['x-request-id']),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    keepAliveTimeout: 65_000,
    connectionTimeout: 0,
    requestTimeout: 120_000,
    routerOptions: { ignoreTrailingSlash: false, caseSensitive: true, maxParamLength: 200 },
    ajv: undefined,
  }) as unknown as FastifyInstance;
  // JSON only: anything else is 415 rather than a string that fails validation later.
  app.removeContentTypeParser('text/plain');
  app.setValidatorCompiler(({ schema, httpPart }) => {
    const validate = compileValidator(schema as object, httpPart);
    return (data: unknown) => (validate(data) ? { value: data } : { error: Object.assign(new Error('validation'), { validation: validate.errors }) });
  });

  // A mirror of the routes, so an unmatched method can answer 405 with Allow.
  const routes = FindMyWay({ ignoreTrailingSlash: false });
  app.addHook('onRoute', (route) => {
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
  const { app, state } = buildApp({ log, servedBy, bodyLimitBytes: kit.bodyLimitBytes });
  const dataDir = resolve(kit.dataDir, def.name);
  mkdirSync(dataDir, { recursive: true });
  const closers: Array<() => Promise<void> | void> = [];
  const registry = kit.register && def.register !== false ? new RegistryClient({ controlUrl: controlUrlOf(kit), log }) : null;
  let mesh: MeshClient | null = null;
  const faults = new Faults(kit.testFaults, log);
  faults.routes(app);
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
        mesh = new MeshClient({ registry, log, source: servedBy });
        closers.unshift(() => mesh?.close());
      }
      return mesh;
    },
    faults,
    dataDir,
    meta: {},
    onClose: (fn) => closers.push(fn),
  };
  for (const dep of def.dependsOn ?? []) registry?.watch(dep);

  await def.setup(ctx);
  await app.listen({ host: kit.host, port: kit.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : kit.port;
  const url = `http://${kit.host.includes(':') ? `[${kit.host}]` : kit.host}:${port}`;
  await def.afterListen?.(ctx, port);
  state.ready = true;

  const registration: Registration = {
    ID: kit.instanceId,
    Name: def.name,
    Address: kit.host,
    Port: port,
    Tags: [kit.version],
    Meta: { version: kit.version, pid: String(process.pid), startedAt: new Date(state.startedAtMs).toISOString(), ...ctx.meta },
    Check: {
      CheckID: `service:${kit.instanceId}`,
      Name: `${def.name} ready`,
      HTTP: `${url}/health/ready`,
      Interval: `${kit.checkIntervalMs}ms`,
      Timeout: `${kit.checkTimeoutMs}ms`,
      DeregisterCriticalServiceAfter: `${kit.deregisterAfterMs}ms`,
      // Timeouts (a busy instance) are tolerated this many times in a row; a refused
      // connection (a dead one) or a 503 (draining) is critical at once.
      FailuresBeforeCritical: kit.checkFailuresBeforeCritical,
    },
  };
  if (registry) await registry.registerSelf(registration);
  log.info({ url, port }, `${def.name} listening`);

  let stopping: Promise<void> | null = null;
  const stop = (reason = 'stop'): Promise<void> => {
    if (stopping) return stopping;
    stopping = (async () => {
      log.info({ reason }, 'shutting down');
      state.draining = true;
      // Leave the registry first so callers stop picking this instance, then stop accepting
      // and let in-flight requests finish, up to the bound.
      if (registry) await registry.deregisterSelf(1000).catch((err) => log.warn({ err }, 'deregister failed'));
      const closed = app.close();
      const timedOut = await Promise.race([
        closed.then(() => false),
        new Promise<boolean>((r) => setTimeout(() => r(true), kit.shutdownTimeoutMs).unref()),
      ]);
      if (timedOut) {
        log.warn({ shutdownTimeoutMs: kit.shutdownTimeoutMs }, 'in-flight requests still running at the shutdown bound; closing connections');
        app.server.closeAllConnections();
      }
      for (const fn of closers.reverse()) {
        try {
          await fn();
        } catch (err) {
          log.error({ err }, 'close hook failed');
        }
      }
      registry?.close();
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
