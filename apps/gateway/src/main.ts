/**
 * The API gateway: the single public entry. Authenticates (JWT against the user service's
 * JWKS), authorises, rate-limits, routes every API.md route to its service through the mesh,
 * and aggregates the user dashboard behind circuit breakers.
 */
import { type BucketPolicy, DEFAULT_BREAKER, type Decision } from '@concord/core';
import {
  Guard,
  HttpError,
  type Identity,
  UpstreamError,
  boolVar,
  durationVar,
  intVar,
  runService,
  serviceFqdn,
  stringVar,
  type VarSpec,
} from '@concord/platform';
import type { IncomingMessage } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DASHBOARD_SERVICES, Dashboard } from './dashboard.js';
import { clientResponseHeaders, nextTraceparent, upstreamRequestHeaders } from './headers.js';
import { FailoverRateLimiter, LoopClock, MemoryRateLimiter, type RateLimiter, RedisRateLimiter, parseGroupLimits, rateLimitHeaders } from './rate-limit.js';
import { type Group, ROUTES, type RouteSpec, UPSTREAMS } from './routes-table.js';
import { answerProtocolErrors } from './wire.js';

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
    redisPrefix: stringVar('CONCORD_RATE_LIMIT_REDIS_PREFIX', 'concord:rl:', /^[A-Za-z0-9:._-]{1,64}$/, 'a key prefix of letters, digits, ":", ".", "_" or "-"'),
    breakerFailures: intVar('CONCORD_BREAKER_FAILURES', DEFAULT_BREAKER.failureThreshold, 1, 1000),
    breakerSuccesses: intVar('CONCORD_BREAKER_SUCCESSES', DEFAULT_BREAKER.successThreshold, 1, 1000),
    breakerTimeoutMs: durationVar('CONCORD_BREAKER_TIMEOUT', DEFAULT_BREAKER.timeoutMs, 10, 3_600_000),
    dashboardDeadlineMs: durationVar('CONCORD_DASHBOARD_DEADLINE', 1500, 10, 60_000),
    upstreamTimeoutMs: durationVar('CONCORD_GATEWAY_UPSTREAM_TIMEOUT', 10_000, 100, 600_000),
    trustForwardedFor: boolVar('CONCORD_TRUST_X_FORWARDED_FOR', false),
  },
  async setup(ctx) {
    const { app, config, mesh } = ctx;
    const guard = Guard.viaMesh(mesh);
    // Buckets in this process: the store, or the fallback while Redis is unreachable.
    const local = new MemoryRateLimiter();
    let shared: RateLimiter | null = null;
    if (config.redisUrl) {
      const { Redis } = await import('ioredis');
      const redis = new Redis(config.redisUrl, {
        maxRetriesPerRequest: 1,
        enableOfflineQueue: false,
        connectTimeout: 2000,
        retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
      });
      const where = redisAddress(config.redisUrl);
      let lastErrorLogMs = 0;
      redis.on('error', (err) => {
        if (Date.now() - lastErrorLogMs < 10_000) return;
        lastErrorLogMs = Date.now();
        ctx.log.warn({ err: err.message }, `rate-limit store ${where} is unreachable; limits are kept per gateway until it is back`);
      });
      // An unreachable Redis does not keep the only public entry down: it starts with
      // per-instance limits and moves to the shared ones once Redis answers.
      const ready = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 3000);
        redis.once('ready', () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      if (!ready) ctx.log.error({ redis: where }, 'CONCORD_RATE_LIMIT_REDIS_URL is unreachable at start; using per-gateway limits until it answers');
      shared = new FailoverRateLimiter(new RedisRateLimiter(redis, config.redisPrefix), local, (err, n) =>
        ctx.log.warn({ err: (err as Error).message, failovers: n }, 'rate-limit store failed; this request was limited by the local buckets'),
      );
      ctx.meta.rateLimitStore = 'redis';
    }
    const limiter: RateLimiter = shared ?? local;
    const clock = new LoopClock();
    ctx.onClose(() => limiter.close());
    const dashboard = new Dashboard(
      mesh,
      { failureThreshold: config.breakerFailures, successThreshold: config.breakerSuccesses, timeoutMs: config.breakerTimeoutMs, halfOpenMaxCalls: 1 },
      config.dashboardDeadlineMs,
      Date.now,
      (part, service, why) => ctx.log.debug({ part, service, why }, 'dashboard part failed'),
    );
    // Breaker states as a gauge, read when scraped (0 closed, 1 half-open, 2 open).
    ctx.metrics.observeBreakers(() => DASHBOARD_SERVICES.map((service) => ({ destination: serviceFqdn(service), state: dashboard.breakerOf(service).state })));

    const ratePerS = (group: Group): number => config.groups[group] ?? (group === 'auth' || group === 'public' ? config.perIp : config.perUser);

    /** Takes a token for this caller; sets the RateLimit headers; throws 429 when there is none. */
    function limit(req: FastifyRequest, reply: FastifyReply, group: Group, identity: Identity | null): Promise<void> | undefined {
      const rate = ratePerS(group);
      if (rate === 0) return;
      const policy: BucketPolicy = { ratePerS: rate, burst: rate };
      const key = `${group}:${identity ? `u:${identity.userId}` : `ip:${clientIp(req)}`}`;
      // In-memory buckets decide synchronously: no promise on the hot path.
      if (!shared) return void applyDecision(reply, group, rate, policy, local.takeNow(key, policy, clock.now()));
      return shared.take(key, policy, clock.now()).then((d) => applyDecision(reply, group, rate, policy, d));
    }

    function applyDecision(reply: FastifyReply, group: Group, rate: number, policy: BucketPolicy, d: Decision): void {
      const headers = rateLimitHeaders(policy, d);
      if (!d.allowed) {
        ctx.metrics.rateLimited.inc({ group });
        throw new HttpError(429, 'rate-limited', `more than ${rate} requests per second; retry after ${d.retryAfterS} s`, {}, headers);
      }
      reply.headers(headers);
    }

    /**
     * The client's address. Behind one trusted proxy (CONCORD_TRUST_X_FORWARDED_FOR) it is the
     * last X-Forwarded-For entry, the one that proxy appended: the entries before it are
     * whatever the client chose to send.
     */
    function clientIp(req: FastifyRequest): string {
      if (config.trustForwardedFor) {
        const xff = req.headers['x-forwarded-for'];
        const last = typeof xff === 'string' ? xff.slice(xff.lastIndexOf(',') + 1).trim() : '';
        if (last) return last.slice(0, 64);
      }
      return req.ip;
    }

    async function authorize(req: FastifyRequest, rule: RouteSpec['auth']): Promise<Identity | null> {
      if (rule === 'none') return null;
      return rule === 'admin' ? guard.admin(req) : guard.user(req);
    }

    answerProtocolErrors(app.server);
    // Internal headers (x-concord-*: deadlines, faults, source identities) mean something only
    // between Concord's own processes: from outside they are dropped before anything reads them.
    app.server.prependListener('request', (req: IncomingMessage) => {
      for (const name in req.headers) if (name.startsWith('x-concord-')) delete req.headers[name];
    });

    // Bodies pass through untouched (the service validates them), within the size limit.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

    // Every answer carries the trace context of its request, so a client can find it (upstream
    // answers carry their own, which wins).
    app.decorateRequest('traceparent', '');
    app.addHook('onRequest', (req, reply, done) => {
      const url = req.raw.url ?? '/';
      const q = url.indexOf('?');
      if (TRAVERSAL.test(q === -1 ? url : url.slice(0, q))) {
        done(new HttpError(400, 'bad-path', 'the path contains dot segments or encoded separators'));
        return;
      }
      // The service kit's server span, when tracing is on, already continued the client's trace
      // and answers with it; otherwise the gateway continues (or starts) the trace itself.
      const traced = reply.getHeader('traceparent');
      if (typeof traced === 'string') req.traceparent = traced;
      else {
        req.traceparent = nextTraceparent(req.headers.traceparent);
        reply.header('traceparent', req.traceparent);
      }
      done();
    });

    for (const route of ROUTES) {
      app.route({
        method: route.method,
        url: route.path,
        handler: route.auth === 'none' ? async (req, reply) => limitThenForward(req, reply, route, null) : async (req, reply) => limitThenForward(req, reply, route, await authorize(req, route.auth)),
      });
    }

    function limitThenForward(req: FastifyRequest, reply: FastifyReply, route: RouteSpec, identity: Identity | null): Promise<FastifyReply> {
      const pending = limit(req, reply, route.group, identity);
      return pending ? pending.then(() => forward(req, reply, route)) : forward(req, reply, route);
    }

    async function forward(req: FastifyRequest, reply: FastifyReply, route: RouteSpec): Promise<FastifyReply> {
      let r: Awaited<ReturnType<typeof mesh.request<Buffer>>>;
      try {
        r = await mesh.request<Buffer>(route.service, {
          method: route.method,
          path: req.url,
          headers: upstreamRequestHeaders(req.headers, req.id, req.traceparent),
          body: req.body as Buffer | undefined,
          raw: true,
          timeoutMs: route.timeoutMs ?? config.upstreamTimeoutMs,
          trace: req.trace?.ctx,
        });
      } catch (err) {
        throw upstreamProblem(route.service, err);
      }
      if (r.status >= 500 && !isProblemType(r.headers['content-type'])) {
        // Whatever a broken upstream sent (an HTML page, a stack trace) stays here.
        req.log.warn({ service: route.service, status: r.status, instance: r.instance?.id }, 'upstream answered 5xx without a problem document');
        if (r.status === 503) throw new HttpError(503, 'upstream-unavailable', `${route.service} is unavailable; retry later`, {}, { 'retry-after': '1' });
        throw new HttpError(502, 'bad-gateway', `${route.service} failed (${r.status})`);
      }
      reply.code(r.status);
      reply.headers(clientResponseHeaders(r.headers));
      return reply.send(r.body);
    }

    app.get<{ Params: { userId: string } }>(
      '/api/user-dashboard/:userId',
      { schema: { params: { type: 'object', properties: { userId: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._-]+$' } }, required: ['userId'] } } },
      async (req, reply) => {
        const me = await guard.user(req);
        if (me.role !== 'admin' && me.userId !== req.params.userId) throw new HttpError(403, 'forbidden', 'a dashboard is visible to its user and to admins only');
        await limit(req, reply, 'user', me);
        const headers: Record<string, string> = { 'x-request-id': req.id, traceparent: req.traceparent };
        if (typeof req.headers.authorization === 'string') headers.authorization = req.headers.authorization;
        const out = await dashboard.build(req.params.userId, headers, req.trace?.ctx);
        if (out.status === 404) throw new HttpError(404, 'not-found', 'no such user');
        if (out.status !== 200) throw new HttpError(503, 'dashboard-unavailable', 'the user service is unavailable and nothing is cached', { degraded: out.body.degraded }, { 'retry-after': '1' });
        return out.body;
      },
    );

    /** The dashboard's circuit breakers: state and counters per upstream (admins only). */
    app.get('/api/gateway/breakers', async (req) => {
      await guard.admin(req);
      return {
        policy: { failureThreshold: config.breakerFailures, successThreshold: config.breakerSuccesses, timeoutMs: config.breakerTimeoutMs, deadlineMs: config.dashboardDeadlineMs },
        items: DASHBOARD_SERVICES.map((service) => {
          const b = dashboard.breakerOf(service);
          return { service, state: b.state, failures: b.failures, openedAt: b.openedAtMs ? new Date(b.openedAtMs).toISOString() : null, ...dashboard.stats.get(service) };
        }),
      };
    });
  },
});

/** host:port of a Redis URL, for logs (never its password). */
function redisAddress(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return 'redis (unparsable URL)';
  }
}

function isProblemType(contentType: string | string[] | undefined): boolean {
  return typeof contentType === 'string' && contentType.startsWith('application/problem+json');
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The trace context sent upstream (W3C traceparent). */
    traceparent: string;
  }
}

function upstreamProblem(service: string, err: unknown): HttpError {
  if (err instanceof UpstreamError) {
    if (err.kind === 'timeout') return new HttpError(504, 'upstream-timeout', `${service} did not answer in time`);
    return new HttpError(503, 'upstream-unavailable', `${service} is unavailable (${err.kind}); retry later`, {}, { 'retry-after': '1' });
  }
  return new HttpError(502, 'bad-gateway', `${service} answered in a way the gateway could not relay`);
}
