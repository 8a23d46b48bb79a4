/**
 * The mesh configuration routes and shell on a real socket, without a whole system: accepted
 * body types and limits, watch parameters and client aborts, acks, known services, the
 * configuration directory (including a retry once a missing service registers), persistence.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildApp, createLogger } from '@concord/platform';
import type { FastifyInstance } from 'fastify';
import { meshConfigRoutes } from '../src/mesh-config/routes.js';
import { MeshConfigService } from '../src/mesh-config/service.js';
import { Registry } from '../src/registry/registry.js';

const log = createLogger({ service: 'test', instance: 'test', version: 'v1' }, 'silent');

const PA = (mode: string, name = 'default') => `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ${name}}
spec: {mtls: {mode: ${mode}}}
`;

const DR = (host: string) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${host}}
spec:
  host: ${host}
  trafficPolicy: {loadBalancer: {simple: RANDOM}}
`;

function register(registry: Registry, name: string): void {
  registry.register({
    id: `${name}-1`,
    name,
    address: '127.0.0.1',
    port: 1,
    tags: ['v1'],
    meta: { version: 'v1' },
    weights: { Passing: 1, Warning: 1 },
    checks: [],
  });
}

async function until<T>(what: string, probe: () => T | Promise<T>, timeoutMs = 3000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Harness {
  app: FastifyInstance;
  url: string;
  svc: MeshConfigService;
  registry: Registry;
  close(): Promise<void>;
}

async function serve(opts: { dataDir?: string | null; dir?: string; knownHosts?: string } = {}): Promise<Harness> {
  const registry = new Registry({ dataDir: null, log });
  const svc = new MeshConfigService({
    registry,
    dataDir: opts.dataDir ?? null,
    log,
    settings: { meshConfigDir: opts.dir ?? '', meshKnownHosts: opts.knownHosts ?? '' },
  });
  const { app } = buildApp({ log, servedBy: 'control-plane@v1#test', bodyLimitBytes: 1_048_576 });
  meshConfigRoutes(app, svc, { instances: () => registry.catalog.all() });
  svc.start();
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  return {
    app,
    url: `http://127.0.0.1:${port}`,
    svc,
    registry,
    async close() {
      svc.close();
      await app.close();
      registry.close();
    },
  };
}

// biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field
type Json = any;

async function req(url: string, init: RequestInit = {}): Promise<{ status: number; body: Json; headers: Headers }> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON */
  }
  return { status: res.status, body, headers: res.headers };
}

describe('routes', () => {
  let h: Harness;
  before(async () => {
    h = await serve({ knownHosts: 'recommendation' });
  });
  after(() => h.close());

  test('YAML media types (with parameters) and {yaml} JSON are accepted; others are 415', async () => {
    for (const [i, type] of ['application/yaml; charset=utf-8', 'text/yaml', 'application/x-yaml'].entries()) {
      const r = await req(`${h.url}/api/config`, { method: 'POST', headers: { 'content-type': type }, body: PA(i === 1 ? 'STRICT' : 'PERMISSIVE') });
      assert.equal(r.status, 200, `${type}: ${JSON.stringify(r.body)}`);
    }
    const json = await req(`${h.url}/api/config`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ yaml: PA('DISABLE') }),
    });
    assert.equal(json.status, 200);
    const extra = await req(`${h.url}/api/config`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ yaml: PA('DISABLE'), dryRun: true }),
    });
    assert.deepEqual(extra.body.errors, [{ path: '/body/dryRun', message: 'is not a known field (send {"yaml": "..."})' }]);
    const plain = await req(`${h.url}/api/config`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: PA('STRICT') });
    assert.equal(plain.status, 415);
    const empty = await req(`${h.url}/api/config`, { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: '   ' });
    assert.equal(empty.status, 400);
    const comments = await req(`${h.url}/api/config`, { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: '# nothing\n---\n' });
    assert.equal(comments.status, 400);
    assert.equal(comments.body.errors[0].message, 'the stream holds no resources (only comments or empty documents)');
  });

  test('a stream over 1 MiB is 413', async () => {
    const big = `# ${'x'.repeat(1_100_000)}\n${PA('STRICT')}`;
    const r = await req(`${h.url}/api/config`, { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: big });
    assert.equal(r.status, 413);
  });

  test('CONCORD_MESH_KNOWN_HOSTS and registered services are the hosts a resource may name', async () => {
    const known = await req(`${h.url}/api/config`, { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: DR('recommendation') });
    assert.equal(known.status, 200);
    const unknown = await req(`${h.url}/api/config`, { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: DR('payment') });
    assert.equal(unknown.status, 400);
    assert.match(unknown.body.errors[0].message, /no service "payment" is registered/);
    register(h.registry, 'payment');
    const registered = await req(`${h.url}/api/config`, { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: DR('payment') });
    assert.equal(registered.status, 200);
  });

  test('watch: parameters are validated; no version answers at once; a client that leaves frees its waiter', async () => {
    assert.equal((await req(`${h.url}/api/config/watch?version=-1`)).status, 400);
    assert.equal((await req(`${h.url}/api/config/watch?version=1&wait=soon`)).status, 400);
    const now = await req(`${h.url}/api/config/watch`);
    assert.equal(now.status, 200);
    assert.equal(now.body.version, h.svc.store.version);
    const ac = new AbortController();
    const pending = fetch(`${h.url}/api/config/watch?version=${h.svc.store.version}&wait=30s`, { signal: ac.signal }).catch(() => null);
    await until('the watch to wait', () => h.svc.waiting === 1);
    ac.abort();
    await pending;
    await until('the waiter to go', () => h.svc.waiting === 0);
    const t0 = Date.now();
    const short = await req(`${h.url}/api/config/watch?version=${h.svc.store.version}&wait=1`);
    assert.equal(short.status, 200);
    assert.ok(Date.now() - t0 >= 900, 'wait=1 means one second');
  });

  test('acks: validated, listed with the service of a registered instance', async () => {
    register(h.registry, 'recommendation');
    const v = h.svc.store.version;
    assert.equal(
      (
        await req(`${h.url}/api/config/ack`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ instanceId: 'recommendation-1', version: v }),
        })
      ).status,
      204,
    );
    const bad = await req(`${h.url}/api/config/ack`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ instanceId: 'x', version: 1.5, extra: 1 }),
    });
    assert.deepEqual(bad.body.errors.map((e: { path: string }) => e.path).sort(), ['/body/extra', '/body/version']);
    const status = await req(`${h.url}/api/config/status`);
    assert.deepEqual(status.body.instances, [
      { instanceId: 'recommendation-1', service: 'recommendation', version: v, current: true, tracing: null, ackedAt: status.body.instances[0].ackedAt },
      { instanceId: 'payment-1', service: 'payment', version: null, current: false, tracing: null, ackedAt: null },
    ]);
  });

  test('status shows the tracing each data plane reported with its acknowledgement; a malformed report is a 400 naming the field', async () => {
    const put = (body: unknown) => req(`${h.url}/api/config/ack`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const v = h.svc.store.version;
    const tracing = { enabled: true, sampling: { percentage: 5, telemetry: 'payment-sampling' } };
    assert.equal((await put({ instanceId: 'payment-1', version: v, tracing })).status, 204);
    assert.equal((await put({ instanceId: 'recommendation-1', version: v, tracing: { enabled: false, sampling: null } })).status, 204);
    const status = await req(`${h.url}/api/config/status`);
    const of = (id: string) => status.body.instances.find((i: { instanceId: string }) => i.instanceId === id)?.tracing;
    assert.deepEqual(of('payment-1'), tracing);
    assert.deepEqual(of('recommendation-1'), { enabled: false, sampling: null });
    assert.equal((await put({ instanceId: 'recommendation-1', version: v, tracing: { enabled: true, sampling: null, exporter: 'none' } })).status, 204);
    assert.deepEqual((await req(`${h.url}/api/config/status`)).body.instances.find((i: { instanceId: string }) => i.instanceId === 'recommendation-1')?.tracing, {
      enabled: true,
      sampling: null,
      exporter: 'none',
    });
    const bad = await put({ instanceId: 'payment-1', version: v, tracing: { enabled: 'yes', sampling: { percentage: 101, telemetry: '', extra: 1 }, exporter: 'zipkin' } });
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.body.errors.map((e: { path: string }) => e.path).sort(), [
      '/body/tracing/enabled',
      '/body/tracing/exporter',
      '/body/tracing/sampling/extra',
      '/body/tracing/sampling/percentage',
      '/body/tracing/sampling/telemetry',
    ]);
    assert.equal((await put({ instanceId: 'payment-1', version: v, tracing: [] })).status, 400);
    assert.deepEqual(of('payment-1'), tracing, 'a refused report changes nothing');
  });

  test('DELETE accepts kind aliases; unknown kinds are 400', async () => {
    const r = await req(`${h.url}/api/config/pa/default`, { method: 'DELETE' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.deleted, { kind: 'PeerAuthentication', name: 'default' });
    assert.equal((await req(`${h.url}/api/config/Sidecar/x`, { method: 'DELETE' })).status, 400);
  });
});

describe('configuration directory and persistence', () => {
  let tmp: string;
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'mesh-dir-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test('a directory naming a service that has not registered yet is applied once it does', async () => {
    const dir = join(tmp, 'mesh');
    const data = join(tmp, 'data');
    mkdirSync(dir);
    writeFileSync(join(dir, 'dr.yaml'), DR('late'));
    writeFileSync(join(dir, 'notes.txt'), 'not YAML, ignored');
    const h = await serve({ dir, dataDir: data });
    try {
      const rejected = h.svc.store.status()[0];
      assert.equal(rejected?.state, 'rejected');
      assert.match(rejected?.reason ?? '', /no service "late" is registered/);
      register(h.registry, 'late');
      await until('the directory applied after registration', () => h.svc.store.config.destinationRules.length === 1);
      assert.equal(h.svc.store.status()[0]?.source, `file:${join(dir, 'dr.yaml')}`);

      writeFileSync(join(dir, 'pa.yaml'), PA('STRICT'));
      await until('a new file applied', () => h.svc.store.config.peerAuthentications[0]?.mode === 'STRICT');
      const version = h.svc.store.version;
      writeFileSync(join(dir, 'pa.yaml'), PA('SOMETIMES'));
      await until('the bad edit rejected', () => h.svc.store.status().find((s) => s.kind === 'PeerAuthentication')?.state === 'rejected');
      assert.equal(h.svc.store.version, version);
      assert.equal(h.svc.store.config.peerAuthentications[0]?.mode, 'STRICT');
      assert.equal(h.svc.store.status().find((s) => s.kind === 'DestinationRule')?.state, 'applied', 'an unchanged file in a rejected change stays applied');
    } finally {
      await h.close();
    }

    // A restart keeps the configuration (the directory still has the bad edit: still rejected).
    const again = await serve({ dir, dataDir: data, knownHosts: 'late' });
    try {
      assert.equal(again.svc.store.config.peerAuthentications[0]?.mode, 'STRICT');
      assert.equal(again.svc.store.config.destinationRules[0]?.host, 'late');
      assert.equal(again.svc.store.status().find((s) => s.kind === 'PeerAuthentication')?.state, 'rejected');
    } finally {
      await again.close();
    }
  });

  test('a configuration directory that does not exist stops start-up', () => {
    const registry = new Registry({ dataDir: null, log });
    try {
      assert.throws(
        () => new MeshConfigService({ registry, dataDir: null, log, settings: { meshConfigDir: join(tmp, 'nope'), meshKnownHosts: '' } }),
        /CONCORD_MESH_CONFIG_DIR/,
      );
    } finally {
      registry.close();
    }
  });
});
