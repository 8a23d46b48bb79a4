/**
 * A standalone sidecar proxy on the same library as every Concord service: it puts a plain HTTP
 * app that knows nothing of Concord into the mesh.
 *
 * Inbound: the sidecar registers in the registry under the app's service name, holds the
 * service's workload identity, and serves the mesh on its own port — PeerAuthentication
 * (STRICT / PERMISSIVE / DISABLE), AuthorizationPolicy (403), the caller's deadline, server spans
 * and Istio metrics all come from the service kit — then forwards every request that passes to
 * the app (`CONCORD_SIDECAR_UPSTREAM`). The app learns the caller's identity from
 * `x-forwarded-client-cert` (Envoy's XFCC), set only by the sidecar.
 *
 * Outbound: a local egress listener (`CONCORD_SIDECAR_EGRESS_PORT`, 127.0.0.1 only) where the app
 * sends `http://127.0.0.1:<egress>/<service>/<path>`, or any path with `Host: <service>`; the
 * sidecar makes the call with the mesh client (VirtualService routing, retries, timeouts, faults,
 * outlier detection, connection pools, mutual TLS, client spans, metrics).
 *
 * See apps/sidecar/README.md.
 */
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import { mesh } from '@concord/core';
import {
  type MeshClient,
  PROBLEM_CONTENT_TYPE,
  Pool,
  type Problem,
  type Telemetry,
  UpstreamError,
  durationVar,
  intVar,
  peerPrincipal,
  portVar,
  problem,
  requestOn,
  runService,
  sendProblem,
  undiciErrors,
  urlVar,
} from '@concord/platform';
import type { FastifyReply, FastifyRequest } from 'fastify';

const SERVICE = /^[a-z][a-z0-9-]{0,62}$/;
const name = process.env.CONCORD_SIDECAR_SERVICE ?? '';
if (!SERVICE.test(name)) {
  process.stderr.write(
    `sidecar: CONCORD_SIDECAR_SERVICE must name the service the sidecar fronts (lower-case letters, digits and "-", such as "legacy"), got ${JSON.stringify(name)}\n`,
  );
  process.exit(2);
}

/** Connection-level headers (RFC 9110 7.6.1) and what the proxy recomputes: never forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
]);
/** Set by the sidecar only: a caller cannot claim them. */
const SIDECAR_HEADERS = new Set(['x-forwarded-client-cert', 'x-forwarded-proto', 'x-forwarded-for']);
const EGRESS_METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);
const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);
/** HEAD comes with GET (Fastify exposes HEAD for every GET route). */
/** Distinct services the app may call through the egress (each is a registry watch). */
const MAX_EGRESS_SERVICES = 256;
const INBOUND_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/** Flattens Node's headers (arrays joined) without hop-by-hop ones and those in `drop`. */
function forwardable(headers: IncomingMessage['headers'], drop: ReadonlySet<string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || HOP_BY_HOP.has(k) || drop.has(k)) continue;
    out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

runService({
  name,
  config: {
    upstream: urlVar('CONCORD_SIDECAR_UPSTREAM', ''),
    egressPort: portVar('CONCORD_SIDECAR_EGRESS_PORT', 0),
    upstreamTimeoutMs: durationVar('CONCORD_SIDECAR_UPSTREAM_TIMEOUT', 30_000, 1, 600_000),
    upstreamConnections: intVar('CONCORD_SIDECAR_UPSTREAM_CONNECTIONS', 64, 1, 1024),
  },
  async setup(ctx) {
    const { app, config, kit } = ctx;
    if (!config.upstream) {
      process.stderr.write('sidecar: CONCORD_SIDECAR_UPSTREAM must be the URL of the app it fronts, such as http://127.0.0.1:3000\n');
      process.exit(2);
    }
    const upstream = new Pool(config.upstream, {
      connections: config.upstreamConnections,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      connect: { timeout: 2000 },
    });
    ctx.onClose(() => upstream.close());
    const self = mesh.spiffeId(name);

    // ---- inbound: the mesh → the app ----
    app.register(async (scope) => {
      // Bodies pass through untouched, whatever their type; the kit's body limit applies.
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: kit.bodyLimitBytes }, (_req, body, done) => done(null, body));
      scope.route({
        method: [...INBOUND_METHODS],
        url: '/*',
        handler: (req, reply) => forwardInbound(req, reply),
      });
    });

    async function forwardInbound(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
      const headers = forwardable(req.headers, SIDECAR_HEADERS);
      const principal = peerPrincipal(req.raw.socket);
      if (principal) headers['x-forwarded-client-cert'] = `By=${self};URI=spiffe://${principal}`;
      headers['x-forwarded-proto'] = principal ? 'https' : 'http';
      headers['x-forwarded-for'] = req.raw.socket.remoteAddress ?? '';
      // The app's spans (if it traces) continue the sidecar's server span.
      if (req.trace) ctx.telemetry.inject(req.trace.ctx, headers);
      const timeoutMs = Math.max(1, Math.min(config.upstreamTimeoutMs, (req.deadlineMs ?? Number.POSITIVE_INFINITY) - Date.now()));
      try {
        const res = await requestOn(upstream, {
          method: req.method as 'GET',
          path: req.url,
          headers,
          body: Buffer.isBuffer(req.body) ? req.body : undefined,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
          signal: AbortSignal.timeout(timeoutMs),
        });
        const body = Buffer.from(await res.body.arrayBuffer());
        reply.code(res.statusCode);
        for (const [k, v] of Object.entries(res.headers)) {
          // The sidecar's x-served-by names the instance that answered, as every Concord service's does.
          if (v === undefined || HOP_BY_HOP.has(k) || k === 'x-served-by' || k === 'x-request-id') continue;
          reply.header(k, v);
        }
        return reply.send(body);
      } catch (err) {
        const timedOut =
          err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError || (err as Error).name === 'TimeoutError';
        req.log.warn({ err: String(err), upstream: config.upstream }, 'the fronted app did not answer');
        const p = timedOut
          ? problem(504, 'upstream-timeout', `${name}: the app behind the sidecar did not answer within ${Math.round(timeoutMs)} ms`)
          : problem(
              503,
              'upstream-unavailable',
              `${name}: the app behind the sidecar cannot be reached (${(err as { code?: string }).code ?? (err as Error).message})`,
            );
        sendProblem(reply, p);
        return reply;
      }
    }

    // ---- outbound: the app → the mesh ----
    const egress = createServer({ keepAliveTimeout: 65_000, requestTimeout: 120_000, headersTimeout: 60_000, maxHeaderSize: 16_384 }, (req, res) => {
      void forwardOutbound(ctx.mesh, ctx.telemetry, req, res, kit.bodyLimitBytes);
    });
    await new Promise<void>((resolve, reject) => {
      egress.once('error', reject);
      egress.listen({ host: '127.0.0.1', port: config.egressPort }, () => {
        egress.off('error', reject);
        resolve();
      });
    });
    const address = egress.address();
    const egressPort = typeof address === 'object' && address ? address.port : config.egressPort;
    ctx.meta.egressPort = String(egressPort);
    ctx.meta.sidecar = '1';
    ctx.log.info({ egress: `http://127.0.0.1:${egressPort}`, upstream: config.upstream }, 'sidecar egress listening');
    ctx.onClose(
      () =>
        new Promise<void>((resolve) => {
          egress.close(() => resolve());
          egress.closeAllConnections();
        }),
    );
  },
});

/** Where an egress request goes: `Host: <service>`, else the first path segment. */
function egressTarget(hostHeader: string | undefined, url: string): { service: string; path: string } | { error: string } {
  if (!url.startsWith('/')) return { error: 'the request target must be a path (origin form), not an absolute URL' };
  const host = (hostHeader ?? '').replace(/:\d+$/, '').toLowerCase();
  if (host && !LOCAL_HOSTS.has(host)) {
    const service = mesh.serviceOfHost(host);
    if (!SERVICE.test(service)) return { error: `Host "${host}" does not name a service` };
    return { service, path: url };
  }
  const q = url.indexOf('?');
  const pathname = q < 0 ? url : url.slice(0, q);
  const slash = pathname.indexOf('/', 1);
  const service = slash < 0 ? pathname.slice(1) : pathname.slice(1, slash);
  if (!SERVICE.test(service)) return { error: 'send http://127.0.0.1:<egress>/<service>/<path>, or any path with a Host: <service> header' };
  return { service, path: `${slash < 0 ? '/' : pathname.slice(slash)}${q < 0 ? '' : url.slice(q)}` };
}

async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer | 'too-large'> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) return 'too-large';
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function answerProblem(res: ServerResponse, p: Problem, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(p);
  res.writeHead(p.status, { 'content-type': PROBLEM_CONTENT_TYPE, 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

const egressServices = new Set<string>();

async function forwardOutbound(meshClient: MeshClient, telemetry: Telemetry, req: IncomingMessage, res: ServerResponse, maxBytes: number): Promise<void> {
  try {
    const target = egressTarget(req.headers.host, req.url ?? '/');
    if ('error' in target) return answerProblem(res, problem(400, 'bad-egress-target', target.error));
    if (!egressServices.has(target.service)) {
      if (egressServices.size >= MAX_EGRESS_SERVICES) {
        return answerProblem(res, problem(400, 'too-many-egress-services', `the egress calls at most ${MAX_EGRESS_SERVICES} distinct services`));
      }
      egressServices.add(target.service);
    }
    const method = req.method ?? 'GET';
    if (!EGRESS_METHODS.has(method)) {
      return answerProblem(res, problem(405, 'method-not-allowed', `the egress relays ${[...EGRESS_METHODS].join(', ')}`), {
        allow: [...EGRESS_METHODS].join(', '),
      });
    }
    const body = await readBody(req, maxBytes);
    if (body === 'too-large') return answerProblem(res, problem(413, 'body-too-large', `the request body is larger than ${maxBytes} bytes`));
    const headers = forwardable(req.headers, new Set(['host']));
    let deadlineMs: number | undefined;
    const announced = req.headers[mesh.TIMEOUT_HEADER];
    if (announced !== undefined) {
      const d = mesh.inboundDeadline(announced, Date.now());
      if (!d.ok) return answerProblem(res, problem(400, 'bad-deadline', d.error));
      if (Number.isFinite(d.deadlineMs)) deadlineMs = d.deadlineMs;
      delete headers[mesh.TIMEOUT_HEADER];
    }
    // The app's trace (if it sent traceparent or B3) continues in the mesh client's span.
    const parent = telemetry.extract(req.headers);
    const r = await meshClient.request<Buffer>(target.service, {
      method: method as 'GET',
      path: target.path,
      headers,
      body: body.length > 0 ? body : undefined,
      raw: true,
      deadlineMs,
      trace: parent,
    });
    const out: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(r.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
    out['content-length'] = String(r.body.length);
    res.writeHead(r.status, out);
    res.end(r.body);
  } catch (err) {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof UpstreamError) {
      const p =
        err.kind === 'timeout'
          ? problem(504, 'upstream-timeout', `${err.service} did not answer in time`)
          : problem(503, 'upstream-unavailable', `${err.service} is unavailable (${err.kind}): ${err.message}`);
      return answerProblem(res, p, { 'x-concord-upstream-failure': err.kind, 'retry-after': '1' });
    }
    answerProblem(res, problem(502, 'bad-gateway', `the egress could not relay the call: ${(err as Error).message}`));
  }
}
