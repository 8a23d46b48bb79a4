/**
 * The API gateway: the single public entry. Authenticates (JWT against the user service's
 * JWKS), authorises, rate-limits, routes every API.md route to its service through the mesh,
 * and aggregates the user dashboard behind circuit breakers.
 */
import { type BucketPolicy, DEFAULT_BREAKER } from '@concord/core';
import {
  Guard,
  HttpError,
  type Identity,
  UpstreamError,
  boolVar,
  durationVar,
  intVar,
  runService,
  stringVar,
  type VarSpec,
} from '@concord/platform';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Dashboard } from './dashboard.js';
import { clientResponseHeaders, upstreamRequestHeaders } from './headers.js';
import { MemoryRateLimiter, type RateLimiter, RedisRateLimiter, parseGroupLimits, rateLimitHeaders } from './rate-limit.js';
import { type Group, ROUTES, type RouteSpec, UPSTREAMS } from './routes-table.js';

const groupLimitsVar: VarSpec<Record<string, number>> = {
  env: 'CONCORD_RATE_LIMIT_GROUPS',
  default: {},
  accepts: 'comma-separated group=requests-per-second pairs, groups auth, public, user, admin (e.g. "auth=10,admin=200")',
  parse: parseGroupLimits,
};

/** Paths with dot segments (raw or encoded) are refused before routing. */
const TRAVERSAL = /(^|\/)(\.|%2e){1,2}(\/|$|%2f)|%2f|%5c|\\/i;

runService({
  name: 'gateway',
  portEnv: 'CONCORD_GATEWAY_PORT',
  dependsOn: [...UPSTREAMS, 'points'],
  config: {
    perUser: intVar('CONCORD_RATE_LIMIT_PER_USER', 50, 0, 1_000_000),
    perIp: intVar('CONCORD_RATE_LIMIT_PER_IP', 100, 0, 1_000_000),
    groups: groupLimitsVar,
    redisUrl: stringVar('CONCORD_RATE_LIMIT_REDIS_URL', '', /^rediss?:\/\//, 'a redis:// URL such as redis://127.0.0.1:6379'),
    breakerFailures: intVar('CONCORD_BREAKER_FAILURES', DEFAULT_BREAKER.failureThreshold, 1, 1000),
    breakerSuccesses: intVar('CONCORD_BREAKER_SUCCESSES', DEFAULT_BREAKER.successThreshold, 1, 1000),
    breakerTimeoutMs: durationVar('CONCORD_BREAKER_TIMEOUT', DEFAULT_BREAKER.timeoutMs, 10, 3_600_000),
    dashboardDeadlineMs: durationVar('CONCORD_DASHBOARD_DEADLINE', 1500, 10, 60_000),
    trustForwardedFor: boolVar('CONCORD_TRUST_X_FORWARDED_FOR', false),
  },
  async setup(ctx) {
    const { app, config, mesh } = ctx;
    const guard = Guard.viaMesh(mesh);
    let limiter: RateLimiter = new MemoryRateLimiter();
    if (config.redisUrl) {
      const { Redis } = await import('ioredis');
      const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true });
      try {
        await redis.connect();
      } catch (err) {
        throw new Error(`CONCORD_RATE_LIMIT_REDIS_URL=${config.redisUrl} is unreachable (${(err as Error).message}); unset it to keep limits in memory`);
      }
      limiter = new RedisRateLimiter(redis);
      ctx.meta.rateLimitStore = 'redis';
    }
    ctx.onClose(() => limiter.close());
    const dashboard = new Dashboard(
      mesh,
      { failureThreshold: config.breakerFailures, successThreshold: config.breakerSuccesses, timeoutMs: config.breakerTimeoutMs, halfOpenMaxCalls: 1 },
      config.dashboardDeadlineMs,
    );

    const ratePerS = (group: Group): number => config.groups[group] ?? (group === 'auth' || group === 'public' ? config.perIp : config.perUser);

    async function limit(req: FastifyRequest, reply: FastifyReply, group: Group, identity: Identity | null): Promise<void> {
      const rate = ratePerS(group);
      if (rate === 0) return;
      const policy: BucketPolicy = { ratePerS: rate, burst: rate };
      const who = identity ? `u:${identity.userId}` : `ip:${clientIp(req)}`;
      let d: Awaited<ReturnType<RateLimiter['take']>>;
      try {
        d = await limiter.take(`${group}:${who}`, policy, Date.now());
      } catch (err) {
        // A limiter outage must not take the API down: fail open, loudly.
        req.log.warn({ err }, 'rate limiter unavailable; letting the request through');
        return;
      }
      const headers = rateLimitHeaders(policy, d);
      for (const [k, v] of Object.entries(headers)) reply.header(k, v);
      if (!d.allowed) throw new HttpError(429, 'rate-limited', `more than ${rate} requests per second; retry after ${d.retryAfterS} s`, {}, headers);
    }

    function clientIp(req: FastifyRequest): string {
      if (config.trustForwardedFor) {
        const xff = req.headers['x-forwarded-for'];
        if (typeof xff === 'string') return xff.split(',')[0]!.trim().slice(0, 64);
      }
      return req.ip;
    }

    async function authorize(req: FastifyRequest, rule: RouteSpec['auth']): Promise<Identity | null> {
      if (rule === 'none') return null;
      return rule === 'admin' ? guard.admin(req) : guard.user(req);
    }

    // Bodies pass through untouched (the service validates them), within the size limit.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

    app.addHook('onRequest', async (req) => {
      const path = (req.raw.url ?? '/').split('?')[0] ?? '/';
      if (TRAVERSAL.test(path)) throw new HttpError(400, 'bad-path', 'the path contains dot segments or encoded separators');
    });

    for (const route of ROUTES) {
      app.route({
        method: route.method,
        url: route.path,
        handler: async (req, reply) => {
          const identity = await authorize(req, route.auth);
          await limit(req, reply, route.group, identity);
          return forward(req, reply, route);
        },
      });
    }

    async function forward(req: FastifyRequest, reply: FastifyReply, route: RouteSpec): Promise<FastifyReply> {
      let r: Awaited<ReturnType<typeof mesh.request<Buffer>>>;
      try {
        r = await mesh.request<Buffer>(route.service, {
          method: route.method,
          path: req.url,
          headers: upstreamRequestHeaders(req.headers, req.id),
          body: req.body as Buffer | undefined,
          raw: true,
          timeoutMs: route.timeoutMs,
        });
      } catch (err) {
        throw upstreamProblem(route.service, err);
      }
      reply.code(r.status);
      for (const [k, v] of Object.entries(clientResponseHeaders(r.headers))) reply.header(k, v);
      return reply.send(r.body);
    }

    app.get<{ Params: { userId: string } }>(
      '/api/user-dashboard/:userId',
      { schema: { params: { type: 'object', properties: { userId: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._-]+$' } }, required: ['userId'] } } },
      async (req, reply) => {
        const me = await guard.user(req);
        if (me.role !== 'admin' && me.userId !== req.params.userId) throw new HttpError(403, 'forbidden', 'a dashboard is visible to its user and to admins only');
        await limit(req, reply, 'user', me);
        const out = await dashboard.build(req.params.userId, { 'x-request-id': req.id, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
        if (out.status === 404) throw new HttpError(404, 'not-found', 'no such user');
        if (out.status !== 200) throw new HttpError(503, 'dashboard-unavailable', 'the user service is unavailable and nothing is cached', { degraded: out.body.degraded });
        return out.body;
      },
    );

    /** Breaker states, for the console and tests. */
    app.get('/api/gateway/breakers', async () => ({
      items: [...dashboard.breakers.entries()].map(([service, b]) => ({ service, state: b.state, failures: b.failures, openedAt: b.openedAtMs ? new Date(b.openedAtMs).toISOString() : null })),
    }));
  },
});

function upstreamProblem(service: string, err: unknown): HttpError {
  if (err instanceof UpstreamError) {
    if (err.kind === 'timeout') return new HttpError(504, 'upstream-timeout', `${service} did not answer in time`);
    return new HttpError(503, 'upstream-unavailable', `${service} is unavailable (${err.kind}); retry later`, {}, { 'retry-after': '1' });
  }
  return new HttpError(502, 'bad-gateway', `${service} answered in a way the gateway could not relay`);
}
