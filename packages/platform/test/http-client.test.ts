import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { type IncomingMessage, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Agent, Pool, request, undiciErrors } from '../src/http-client/undici.js';
import { dispatch } from '../src/http-client/dispatch.js';

test('request sends the method, path with query, headers and body on the caller’s dispatcher', async (t) => {
  const seen: Array<{ method?: string; url?: string; type?: string; body: string }> = [];
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => {
      body += d;
    });
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, type: req.headers['content-type'], body });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ ok: true }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const agent = new Agent({ connections: 1 });
  t.after(async () => {
    await agent.close();
    server.close();
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const got = await request(`${base}/a/b?x=1&y=2`, { dispatcher: agent });
  assert.equal(got.statusCode, 200);
  assert.deepEqual(await got.body.json(), { ok: true });

  const put = await request(`${base}/put`, { dispatcher: agent, body: '{"k":1}', headers: { 'content-type': 'application/json' } });
  await put.body.dump();
  const post = await request(`${base}/post`, { dispatcher: agent, method: 'POST', body: 'x' });
  await post.body.dump();

  assert.deepEqual(seen, [
    { method: 'GET', url: '/a/b?x=1&y=2', type: undefined, body: '' },
    // undici's rule: a body without a method is a PUT.
    { method: 'PUT', url: '/put', type: 'application/json', body: '{"k":1}' },
    { method: 'POST', url: '/post', type: undefined, body: 'x' },
  ]);
});

test('a refused connection rejects with undici’s own error classes', async () => {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  const agent = new Agent({ connections: 1, connect: { timeout: 1000 } });
  try {
    await assert.rejects(request(`http://127.0.0.1:${port}/`, { dispatcher: agent }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ECONNREFUSED');
      return true;
    });
    await agent.close();
    await assert.rejects(request(`http://127.0.0.1:${port}/`, { dispatcher: agent }), undiciErrors.ClientDestroyedError);
  } finally {
    await agent.destroy();
  }
});

/** The scripts V8 has parsed in a fresh process after importing the platform (every module, CommonJS or ESM). */
function scriptsLoadedByThePlatform(): string[] {
  const index = fileURLToPath(new URL('../src/index.js', import.meta.url));
  const script = `
    import { Session } from 'node:inspector/promises';
    await import(${JSON.stringify(index)});
    const session = new Session();
    session.connect();
    const urls = [];
    session.on('Debugger.scriptParsed', (m) => urls.push(m.params.url));
    await session.post('Debugger.enable');
    console.log(JSON.stringify(urls));`;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as string[];
}

test('loading the platform loads the parts of undici it uses and nothing else (no fetch, WebSocket, caches, mocks), and not jose', () => {
  const loaded = scriptsLoadedByThePlatform();
  assert.ok(loaded.some((u) => u.endsWith('/undici/lib/dispatcher/client.js')), 'the connection client is loaded');
  // The scan sees ES modules (the platform's own) and CommonJS ones (fastify) alike.
  assert.ok(loaded.some((u) => u.endsWith('/platform/dist/src/mesh/client.js')) && loaded.some((u) => u.endsWith('/node_modules/fastify/fastify.js')));
  assert.deepEqual(
    loaded.filter((u) => /\/undici\/index\.js$|\/undici\/lib\/(web|mock|cache|interceptor)\//.test(u)),
    [],
  );
  // jose is loaded by the first token a process checks, not by every process at start.
  assert.deepEqual(
    loaded.filter((u) => u.includes('/jose/')),
    [],
  );
});

test('dispatch: a try that times out while queued on a pool leaves the pool serving, and is never sent; with destroyOnEarlyAbort the client goes', async (t) => {
  const seen: string[] = [];
  let release: () => void = () => {};
  const server = createServer((req, res) => {
    seen.push(req.url ?? '');
    req.resume();
    const answer = () => res.writeHead(200).end('ok');
    if (req.url === '/held') release = answer;
    else answer();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const pool = new Pool(origin, { connections: 1, pipelining: 1 });
  t.after(async () => {
    await pool.destroy().catch(() => {});
    server.close();
  });
  const get = (path: string, timeoutMs: number, destroyOnEarlyAbort: boolean) => dispatch(pool, { path, method: 'GET', headers: {}, body: undefined }, timeoutMs, { destroyOnEarlyAbort });

  const held = get('/held', 10_000, false);
  // The one connection is busy: the next try waits in the pool's queue until its timer ends it.
  await assert.rejects(get('/queued', 50, false), { name: 'TimeoutError', answeredStatus: 0 });
  release();
  assert.equal((await held).status, 200);
  assert.equal((await get('/after', 5000, false)).status, 200, 'the pool still serves');
  assert.deepEqual(seen, ['/held', '/after'], 'the try that ended while queued was never sent');

  const held2 = get('/held', 10_000, false);
  await assert.rejects(get('/queued', 50, true), { name: 'TimeoutError' });
  await assert.rejects(held2, 'destroying the pool ends what it was doing too');
  await assert.rejects(get('/after', 5000, false), /destroyed/i, 'a destroyed client takes no more tries');
});
