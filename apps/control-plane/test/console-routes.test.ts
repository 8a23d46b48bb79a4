/**
 * The console's routes on a real socket, without a whole system: static serving (safe paths,
 * cache headers, the single-page fallback that never hides an API 404, the page shown when
 * the console is not built), the stream, topology and series, and the gateway proxy (its
 * whitelist and the caller's Authorization passed through).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildApp, createLogger } from '@concord/platform';
import type { FastifyInstance } from 'fastify';
import { MetricsScraper } from '../src/console/metrics-scraper.js';
import { consoleRoutes } from '../src/console/routes.js';
import { resolveStaticPath } from '../src/console/static.js';
import type { StreamHub } from '../src/console/stream.js';
import { gatewayTarget } from '../src/console/view.js';
import { meshConfigRoutes } from '../src/mesh-config/routes.js';
import { MeshConfigService } from '../src/mesh-config/service.js';
import { Registry } from '../src/registry/registry.js';
import { TraceStore } from '../src/traces/store.js';

// biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field
type Json = any;

const log = createLogger({ service: 'test', instance: 'test', version: 'v1' }, 'silent');

interface Harness {
  url: string;
  app: FastifyInstance;
  registry: Registry;
  scraper: MetricsScraper;
  hub: StreamHub;
  close(): Promise<void>;
}

async function serve(opts: { staticRoot: string; gatewayUrl?: string | null; maxClients?: number }): Promise<Harness> {
  const registry = new Registry({ dataDir: null, log });
  const meshConfig = new MeshConfigService({ registry, dataDir: null, log, settings: { meshConfigDir: '', meshKnownHosts: 'recommendation' } });
  const traces = new TraceStore();
  const scraper = new MetricsScraper({ registry, log, timeoutMs: 500 });
  const { app } = buildApp({ log, servedBy: 'control-plane@v1#test', bodyLimitBytes: 1_048_576 });
  meshConfigRoutes(app, meshConfig, { instances: () => [] });
  const routes = consoleRoutes(app, {
    registry,
    meshConfig,
    traces,
    scraper,
    log,
    staticRoot: opts.staticRoot,
    stream: { maxClients: opts.maxClients ?? 4, heartbeatMs: 60_000 },
    ...(opts.gatewayUrl !== undefined ? { gatewayUrl: () => opts.gatewayUrl ?? null } : {}),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    app,
    registry,
    scraper,
    hub: routes.hub,
    async close() {
      routes.close();
      scraper.close();
      meshConfig.close();
      await app.close();
      registry.close();
    },
  };
}

/** A raw GET, so the path reaches the server exactly as written (fetch normalises dot segments). */
function rawGet(url: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const r = httpRequest({ host: u.hostname, port: u.port, path, method: 'GET', headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    r.on('error', reject);
    r.end();
  });
}

function makeDist(): string {
  const root = mkdtempSync(join(tmpdir(), 'concord-console-'));
  const dist = join(root, 'dist');
  mkdirSync(join(dist, 'assets'), { recursive: true });
  writeFileSync(join(dist, 'index.html'), '<!doctype html><title>console</title><div id="root"></div>');
  writeFileSync(join(dist, 'assets', 'app-abc123.js'), 'console.log(1)');
  writeFileSync(join(dist, 'assets', 'app-abc123.css'), 'body{}');
  writeFileSync(join(dist, 'favicon.svg'), '<svg/>');
  writeFileSync(join(root, 'secret.txt'), 'outside the root');
  symlinkSync(join(root, 'secret.txt'), join(dist, 'assets', 'link.js'));
  return dist;
}

describe('static path resolution', () => {
  const root = '/srv/console/dist';
  test('API paths are never the console’s', () => {
    for (const p of ['/api', '/api/x', '/v1/agent/services', '/health/ready', '/metrics', '/debug/mesh'])
      assert.deepEqual(resolveStaticPath(root, p), { kind: 'reject' }, p);
  });
  test('dot segments, encoded ones, backslashes and NUL are refused', () => {
    for (const p of ['/assets/../../etc/passwd', '/%2e%2e/secret', '/assets/%2e%2e/%2e%2e/x.js', '/a\\b.js', '/x%00.js', '/./index.html', '/%E0%A4%A']) {
      assert.deepEqual(resolveStaticPath(root, p), { kind: 'reject' }, p);
    }
  });
  test('paths without an extension are client-side routes; others are files inside the root', () => {
    assert.deepEqual(resolveStaticPath(root, '/'), { kind: 'spa' });
    assert.deepEqual(resolveStaticPath(root, '/traces/abc'), { kind: 'spa' });
    assert.deepEqual(resolveStaticPath(root, '/assets/app.js'), { kind: 'file', path: '/srv/console/dist/assets/app.js' });
    assert.deepEqual(resolveStaticPath(root, '/favicon.svg'), { kind: 'file', path: '/srv/console/dist/favicon.svg' });
  });
});

describe('gateway proxy whitelist', () => {
  test('only the admin routes the console needs are proxied, with their query', () => {
    assert.equal(
      gatewayTarget('GET', '/api/console/gateway/admin/sagas?status=NEEDS_ATTENTION&limit=200'),
      '/api/admin/sagas?status=NEEDS_ATTENTION&limit=200',
    );
    assert.equal(gatewayTarget('GET', '/api/console/gateway/admin/sagas/ord-1'), '/api/admin/sagas/ord-1');
    assert.equal(gatewayTarget('POST', '/api/console/gateway/admin/sagas/ord-1/retry'), '/api/admin/sagas/ord-1/retry');
    assert.equal(gatewayTarget('GET', '/api/console/gateway/gateway/breakers'), '/api/gateway/breakers');
    assert.equal(gatewayTarget('GET', '/api/console/gateway/admin/orders/summary'), '/api/admin/orders/summary');
  });
  test('anything else is refused: other routes, other methods, traversal, odd queries', () => {
    for (const [m, u] of [
      ['GET', '/api/console/gateway/admin/products'],
      ['POST', '/api/console/gateway/admin/sagas'],
      ['GET', '/api/console/gateway/admin/sagas/ord-1/retry'],
      ['GET', '/api/console/gateway/admin/sagas/../users/me'],
      ['GET', '/api/console/gateway/admin/sagas/%2e%2e'],
      ['GET', '/api/console/gateway/admin/sagas?x=<script>'],
      ['GET', '/api/console/gateway/auth/login'],
      ['GET', '/api/other'],
    ] as const) {
      assert.equal(gatewayTarget(m, u), null, `${m} ${u}`);
    }
  });
});

describe('console routes', () => {
  let h: Harness;
  let gateway: Server;
  let seen: Array<{ method: string; url: string; authorization: string | undefined; body: string }> = [];
  let dist: string;
  before(async () => {
    gateway = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization, body });
        res.writeHead(req.url === '/api/auth/login' ? 200 : 202, { 'content-type': 'application/json', 'x-served-by': 'gateway@v1#gw', 'set-cookie': 'x=1' });
        res.end(JSON.stringify({ ok: true, url: req.url }));
      });
    });
    await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r));
    dist = makeDist();
    h = await serve({ staticRoot: dist, gatewayUrl: `http://127.0.0.1:${(gateway.address() as { port: number }).port}`, maxClients: 2 });
  });
  after(async () => {
    await h.close();
    gateway.close();
    rmSync(join(dist, '..'), { recursive: true, force: true });
  });

  test('/ and client-side routes answer index.html, never cached, with a content security policy', async () => {
    for (const p of ['/', '/topology', '/traces/0123456789abcdef0123456789abcdef', '/sagas/ord-1']) {
      const r = await rawGet(h.url, p, { accept: 'text/html' });
      assert.equal(r.status, 200, p);
      assert.match(r.body, /<div id="root">/);
      assert.equal(r.headers['cache-control'], 'no-cache');
      assert.match(String(r.headers['content-security-policy']), /default-src 'self'/);
    }
  });

  test('hashed assets are cached for a year with their content type; top-level files are served', async () => {
    const js = await rawGet(h.url, '/assets/app-abc123.js');
    assert.equal(js.status, 200);
    assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(js.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(js.headers['x-content-type-options'], 'nosniff');
    const css = await rawGet(h.url, '/assets/app-abc123.css');
    assert.equal(css.headers['content-type'], 'text/css; charset=utf-8');
    const again = await rawGet(h.url, '/assets/app-abc123.js', { 'if-none-match': String(js.headers.etag) });
    assert.equal(again.status, 304);
    const icon = await rawGet(h.url, '/favicon.svg');
    assert.equal(icon.status, 200);
    assert.equal(icon.headers['content-type'], 'image/svg+xml');
  });

  test('traversal, symlinks out of the root and missing assets are 404; API paths keep their problem+json 404 and 405', async () => {
    for (const p of ['/assets/../../secret.txt', '/assets/%2e%2e/%2e%2e/secret.txt', '/assets/link.js', '/assets/missing.js', '/missing.png']) {
      const r = await rawGet(h.url, p);
      assert.equal(r.status, 404, p);
      assert.doesNotMatch(r.body, /outside the root/);
    }
    const api = await rawGet(h.url, '/api/nope', { accept: 'text/html' });
    assert.equal(api.status, 404);
    assert.match(String(api.headers['content-type']), /problem\+json/);
    const post = await fetch(`${h.url}/api/console/topology`, { method: 'POST' });
    assert.equal(post.status, 405);
    const jsonClient = await rawGet(h.url, '/somewhere', { accept: 'application/json' });
    assert.equal(jsonClient.status, 404, 'an API client asking JSON is not handed the web app');
  });

  test('topology lists registered services with their instances; series answers per service', async () => {
    h.registry.register({
      id: 'order-1',
      name: 'order',
      address: '127.0.0.1',
      port: 1,
      tags: ['v1'],
      meta: { version: 'v1' },
      weights: { Passing: 1, Warning: 1 },
      checks: [],
    });
    h.registry.register({
      id: 'rec-2',
      name: 'recommendation',
      address: '127.0.0.1',
      port: 2,
      tags: ['v2'],
      meta: { version: 'v2' },
      weights: { Passing: 1, Warning: 1 },
      checks: [],
    });
    const t: Json = await (await fetch(`${h.url}/api/console/topology`)).json();
    assert.equal(t.windowSeconds, 60);
    assert.deepEqual(
      t.nodes.map((n: { name: string; instances: number; versions: string[] }) => [n.name, n.instances, n.versions]),
      [
        ['order', 1, ['v1']],
        ['recommendation', 1, ['v2']],
      ],
    );
    assert.deepEqual(t.edges, []);
    const s: Json = await (await fetch(`${h.url}/api/console/series?service=order&minutes=2`)).json();
    assert.equal(s.minutes, 2);
    assert.equal(s.series[0].service, 'order');
    const bad = await fetch(`${h.url}/api/console/series?minutes=99`);
    assert.equal(bad.status, 400);
  });

  test('the stream sends a snapshot at once and on every push; clients are bounded', async () => {
    const ac = new AbortController();
    const res = await fetch(`${h.url}/api/console/stream`, { signal: ac.signal });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const events: string[] = [];
    let buf = '';
    const nextEvent = async (): Promise<string> => {
      for (let i = 0; i < 100; i++) {
        const end = buf.indexOf('\n\n');
        if (end !== -1) {
          const frame = buf.slice(0, end);
          buf = buf.slice(end + 2);
          if (frame.startsWith('event: snapshot')) return frame;
          continue;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error('stream ended');
        buf += new TextDecoder().decode(value);
      }
      throw new Error('no event');
    };
    events.push(await nextEvent());
    const first = JSON.parse(events[0]!.split('\ndata: ')[1]!);
    assert.deepEqual(Object.keys(first).sort(), ['at', 'config', 'services', 'topology', 'traces']);
    assert.equal(first.config.version, 0);
    // A configuration change is pushed without waiting for the next scrape round.
    const applied = await fetch(`${h.url}/api/config`, {
      method: 'POST',
      headers: { 'content-type': 'application/yaml' },
      body: 'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: recommendation}\nspec: {host: recommendation}\n',
    });
    assert.equal(applied.status, 200);
    let pushed = JSON.parse((await nextEvent()).split('\ndata: ')[1]!);
    for (let i = 0; i < 5 && pushed.config.version === 0; i++) pushed = JSON.parse((await nextEvent()).split('\ndata: ')[1]!);
    assert.equal(pushed.config.version, 1);
    assert.equal(pushed.config.resources[0].state, 'applied');
    // Two clients at most: the second is accepted, the third refused.
    const ac2 = new AbortController();
    const second = await fetch(`${h.url}/api/console/stream`, { signal: ac2.signal });
    assert.equal(second.status, 200);
    const third = await fetch(`${h.url}/api/console/stream`);
    assert.equal(third.status, 503);
    assert.equal(third.headers.get('retry-after'), '5');
    ac.abort();
    ac2.abort();
  });

  test('login and whitelisted admin calls reach the gateway with the caller’s Authorization; others do not', async () => {
    seen = [];
    const login = await fetch(`${h.url}/api/console/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'a@b.c', password: 'pw' }),
    });
    assert.equal(login.status, 200);
    assert.equal(login.headers.get('x-upstream-served-by'), 'gateway@v1#gw');
    assert.equal(login.headers.get('set-cookie'), null, 'only known headers are passed back');
    const retry = await fetch(`${h.url}/api/console/gateway/admin/sagas/ord-1/retry`, { method: 'POST', headers: { authorization: 'Bearer t0k' } });
    assert.equal(retry.status, 202);
    const list = await fetch(`${h.url}/api/console/gateway/admin/sagas?status=NEEDS_ATTENTION`, { headers: { authorization: 'Bearer t0k', cookie: 'c=1' } });
    assert.equal(list.status, 202);
    assert.deepEqual(
      seen.map((s) => [s.method, s.url, s.authorization, s.body]),
      [
        ['POST', '/api/auth/login', undefined, '{"email":"a@b.c","password":"pw"}'],
        ['POST', '/api/admin/sagas/ord-1/retry', 'Bearer t0k', ''],
        ['GET', '/api/admin/sagas?status=NEEDS_ATTENTION', 'Bearer t0k', ''],
      ],
    );
    const refused = await fetch(`${h.url}/api/console/gateway/admin/products`, { headers: { authorization: 'Bearer t0k' } });
    assert.equal(refused.status, 404);
    assert.equal(seen.length, 3);
    const badLogin = await fetch(`${h.url}/api/console/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'a@b.c' }),
    });
    assert.equal(badLogin.status, 400);
  });

  test('closing ends open streams at once', async () => {
    const res = await fetch(`${h.url}/api/console/stream`);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    h.hub.close();
    for (let i = 0; i < 100; i++) {
      const { done } = await reader.read();
      if (done) return;
    }
    assert.fail('the stream did not end');
  });
});

describe('console not built', () => {
  let h: Harness;
  before(async () => {
    h = await serve({ staticRoot: join(tmpdir(), 'concord-no-such-console-dist'), gatewayUrl: null });
  });
  after(() => h.close());

  test('the console’s paths answer a 503 page saying how to build it; the APIs work', async () => {
    const r = await rawGet(h.url, '/', { accept: 'text/html' });
    assert.equal(r.status, 503);
    assert.match(r.body, /npm run build/);
    assert.equal(r.headers['cache-control'], 'no-store');
    const t = await fetch(`${h.url}/api/console/topology`);
    assert.equal(t.status, 200);
  });

  test('without a gateway the proxy answers 503 with a reason', async () => {
    const r = await fetch(`${h.url}/api/console/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'a@b.c', password: 'x' }),
    });
    assert.equal(r.status, 503);
    assert.match(((await r.json()) as Json).detail, /no gateway/);
  });
});
