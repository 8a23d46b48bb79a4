import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { type IncomingMessage, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Agent, request, undiciErrors } from '../src/http-client/undici.js';

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
