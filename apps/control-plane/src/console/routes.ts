/**
 * The console's API on the control plane (the web app itself is static.ts):
 *
 * - `GET /api/console/topology?windowSeconds=60` → `{generatedAt, windowSeconds, nodes, edges}`
 * - `GET /api/console/series?service=&minutes=5` → `{minutes, stepSeconds, series: [{service, points}]}`
 * - `GET /api/console/services` → `{instances, breakers, ejected, recentEjections}`
 * - `GET /api/console/stream` — server-sent events: `snapshot` every scrape round (2 s) and on
 *   registry and configuration changes; 503 when the client limit is reached
 * - `POST /api/console/login` `{email, password}` → the gateway's `/api/auth/login`
 * - `GET|POST /api/console/gateway/<path>` → the gateway's `/api/<path>` with the caller's
 *   `Authorization`, for the whitelisted admin routes only (sagas, orders summary, breakers)
 */
import { mesh } from '@concord/core';
import { Agent, HttpError, type Logger, request } from '@concord/platform';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { MeshConfigService } from '../mesh-config/service.js';
import { Catalog } from '../registry/catalog.js';
import type { Registry } from '../registry/registry.js';
import type { TraceStore } from '../traces/store.js';
import type { MetricsScraper } from './metrics-scraper.js';
import { consoleStatic } from './static.js';
import { DEFAULT_STREAM_OPTIONS, StreamHub, type StreamOptions } from './stream.js';
import { type Health, type InstanceInfo, buildTopology, gatewayTarget, servicesView } from './view.js';

export interface ConsoleDeps {
  registry: Registry;
  meshConfig: MeshConfigService;
  traces: TraceStore;
  scraper: MetricsScraper;
  log: Logger;
  /** Where the built console is (default: console/dist of this checkout). */
  staticRoot?: string;
  stream?: Partial<StreamOptions>;
  /** The gateway's origin (default: a passing `gateway` instance from the registry). */
  gatewayUrl?: () => string | null;
}

const TOPOLOGY_WINDOW_MS = 60_000;
const LATEST_TRACES = 20;
const PROXY_TIMEOUT_MS = 10_000;
const PROXY_MAX_BYTES = 4 * 1_048_576;
const CHANGE_DEBOUNCE_MS = 100;
const CONFIG_CHECK_MS = 250;
const PASSED_HEADERS = ['content-type', 'traceparent', 'retry-after', 'ratelimit', 'ratelimit-policy', 'location'];

export function instancesOf(registry: Registry): InstanceInfo[] {
  return registry.catalog
    .all()
    .map((s) => {
      const check = s.checks[0];
      return {
        id: s.id,
        service: s.name,
        version: mesh.instanceVersion(s),
        address: s.address,
        port: s.port,
        status: Catalog.aggregate(s.checks) as Health,
        checkOutput: (check?.output ?? '').slice(0, 300),
        registeredAt: new Date(s.registeredAtMs).toISOString(),
        startedAt: s.meta.startedAt ?? null,
        mtls: s.meta.mtls === '1',
      };
    })
    .sort((a, b) => (a.service === b.service ? (a.id < b.id ? -1 : 1) : a.service < b.service ? -1 : 1));
}

export function registryGatewayUrl(registry: Registry): string | null {
  const all = registry.catalog.instancesOf('gateway');
  const pick = all.find((s) => Catalog.aggregate(s.checks) === 'passing') ?? all[0];
  if (!pick) return null;
  const host = pick.address.includes(':') ? `[${pick.address}]` : pick.address;
  return `http://${host}:${pick.port}`;
}

export function consoleRoutes(app: FastifyInstance, deps: ConsoleDeps): { hub: StreamHub; close(): void } {
  const { registry, meshConfig, traces, scraper } = deps;
  const model = scraper.model;
  const gatewayUrl = deps.gatewayUrl ?? (() => registryGatewayUrl(registry));
  const agent = new Agent({ connections: 8, keepAliveTimeout: 10_000, connect: { timeout: 2000 } });

  const topology = (windowMs: number) => buildTopology(instancesOf(registry), model.edges(windowMs), model.services(windowMs), windowMs, Date.now());
  const services = () => servicesView(instancesOf(registry), model.instanceStates(), model.recentEjections(600_000).slice(0, 200));
  const snapshot = () => ({
    at: new Date().toISOString(),
    topology: topology(TOPOLOGY_WINDOW_MS),
    services: services(),
    config: { version: meshConfig.store.version, resources: meshConfig.store.status() },
    traces: { stored: traces.size, spans: traces.spans, latest: traces.search({ limit: LATEST_TRACES }) },
  });

  const hub = new StreamHub(snapshot, { ...DEFAULT_STREAM_OPTIONS, ...deps.stream });
  let pushTimer: NodeJS.Timeout | null = null;
  const pushSoon = () => {
    if (pushTimer || hub.isClosed) return;
    pushTimer = setTimeout(() => {
      pushTimer = null;
      hub.push();
    }, CHANGE_DEBOUNCE_MS);
    pushTimer.unref();
  };
  const offRound = scraper.onRound(() => hub.push());
  const offRegistry = registry.onChange(pushSoon);
  // A new configuration version is pushed at once (a cheap comparison, four times a second).
  let configVersion = meshConfig.store.version;
  const configTimer = setInterval(() => {
    if (meshConfig.store.version === configVersion) return;
    configVersion = meshConfig.store.version;
    pushSoon();
  }, CONFIG_CHECK_MS);
  configTimer.unref();

  app.get<{ Querystring: { windowSeconds?: number } }>(
    '/api/console/topology',
    { schema: { querystring: { type: 'object', additionalProperties: false, properties: { windowSeconds: { type: 'integer', minimum: 2, maximum: 600 } } } } },
    async (req) => topology((req.query.windowSeconds ?? TOPOLOGY_WINDOW_MS / 1000) * 1000),
  );

  app.get<{ Querystring: { service?: string; minutes?: number } }>(
    '/api/console/series',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { service: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' }, minutes: { type: 'integer', minimum: 1, maximum: 10 } },
        },
      },
    },
    async (req) => {
      const minutes = req.query.minutes ?? 5;
      const series = model.series(minutes * 60_000, req.query.service);
      return { minutes, stepSeconds: model.stepMs / 1000, series: [...series].map(([service, points]) => ({ service, points })) };
    },
  );

  app.get('/api/console/services', async () => services());

  app.get('/api/console/stream', async (req, reply) => {
    if (hub.isClosed) throw new HttpError(503, 'shutting-down', 'the control plane is shutting down', {}, { 'retry-after': '2' });
    if (hub.full) throw new HttpError(503, 'too-many-streams', 'too many console streams are open; close a console tab and retry', {}, { 'retry-after': '5' });
    hub.attach(req, reply);
    return reply;
  });

  async function proxy(req: FastifyRequest, reply: FastifyReply, method: 'GET' | 'POST', path: string, body: string | undefined): Promise<FastifyReply> {
    const origin = gatewayUrl();
    if (!origin) throw new HttpError(503, 'gateway-unavailable', 'no gateway is registered; start one and retry', {}, { 'retry-after': '1' });
    const headers: Record<string, string> = { accept: 'application/json', 'x-request-id': req.id };
    if (typeof req.headers.authorization === 'string') headers.authorization = req.headers.authorization;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(`${origin}${path}`, {
        method,
        headers,
        body,
        dispatcher: agent,
        signal: AbortSignal.timeout(PROXY_TIMEOUT_MS),
        headersTimeout: PROXY_TIMEOUT_MS,
        bodyTimeout: PROXY_TIMEOUT_MS,
      });
    } catch (err) {
      deps.log.warn({ err: (err as Error).message, origin, path }, 'console could not reach the gateway');
      throw new HttpError(502, 'gateway-unreachable', `the gateway at ${origin} did not answer`, {}, { 'retry-after': '1' });
    }
    const chunks: Buffer[] = [];
    let bytes = 0;
    for await (const chunk of res.body) {
      bytes += (chunk as Buffer).length;
      if (bytes > PROXY_MAX_BYTES) {
        res.body.destroy();
        throw new HttpError(502, 'gateway-answer-too-large', `the gateway's answer is larger than ${PROXY_MAX_BYTES} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
    for (const h of PASSED_HEADERS) {
      const v = res.headers[h];
      if (typeof v === 'string') reply.header(h, v);
    }
    const servedBy = res.headers['x-served-by'];
    if (typeof servedBy === 'string') reply.header('x-upstream-served-by', servedBy);
    reply.code(res.statusCode);
    return reply.send(Buffer.concat(chunks));
  }

  app.post<{ Body: { email: string; password: string } }>(
    '/api/console/login',
    {
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['email', 'password'],
          properties: { email: { type: 'string', minLength: 1, maxLength: 320 }, password: { type: 'string', minLength: 1, maxLength: 1024 } },
        },
      },
    },
    async (req, reply) => proxy(req, reply, 'POST', '/api/auth/login', JSON.stringify({ email: req.body.email, password: req.body.password })),
  );

  app.route({
    method: ['GET', 'POST'],
    url: '/api/console/gateway/*',
    handler: async (req, reply) => {
      const target = gatewayTarget(req.method, req.raw.url ?? '');
      if (!target) throw new HttpError(404, 'not-proxied', `the console does not proxy ${req.method} ${(req.raw.url ?? '').split('?')[0]}`);
      const body = req.method === 'POST' && req.body !== undefined && req.body !== null ? JSON.stringify(req.body) : undefined;
      return proxy(req, reply, req.method as 'GET' | 'POST', target, body);
    },
  });

  consoleStatic(app, { root: deps.staticRoot });

  return {
    hub,
    close() {
      offRound();
      offRegistry();
      clearInterval(configTimer);
      if (pushTimer) clearTimeout(pushTimer);
      hub.close();
      void agent.close().catch(() => {});
    },
  };
}
