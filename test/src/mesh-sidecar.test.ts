/**
 * The standalone sidecar (apps/sidecar) on real processes: a tiny plain node:http app in this
 * test process, which knows nothing of Concord, is put into the mesh as service `legacy` by a
 * sidecar. Inbound, the probe calls it through the mesh (mTLS, routing, retries, authorization
 * enforced by the sidecar); outbound, the app calls the sample service through the sidecar's
 * egress port and gets the mesh (mTLS with legacy's identity, routing, faults).
 */
import assert from 'node:assert/strict';
import { type IncomingMessage, type Server, createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type System, http, instances, startSystem } from './harness.js';
import { applyAndWait, deleteResource, probe } from './mesh-helpers.js';

const PROBE = 'probe-1';
const DATA_PLANES = [PROBE, 'legacy-1', 'sample-1'];

/** A plain HTTP request from the app, with a bounded wait. */
function appRequest(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: IncomingMessage['headers']; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.end();
  });
}

describe('the sidecar fronts a plain HTTP app', () => {
  let sys: System;
  let app: Server;
  let egress = '';
  let flaky = 0;
  const seen: Array<{ path: string; xfcc: string | null; traceparent: string | null }> = [];

  before(async () => {
    // The legacy app: plain node:http, no Concord code. It calls other services via the egress.
    app = createServer(async (req, res) => {
      const path = req.url ?? '/';
      seen.push({ path, xfcc: (req.headers['x-forwarded-client-cert'] as string) ?? null, traceparent: (req.headers.traceparent as string) ?? null });
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (path === '/hello')
        return json(200, { app: 'legacy', xfcc: req.headers['x-forwarded-client-cert'] ?? null, proto: req.headers['x-forwarded-proto'] ?? null });
      if (path === '/flaky') return flaky++ % 2 === 0 ? json(503, { error: 'flaky' }) : json(200, { ok: true });
      if (path === '/admin/secrets') return json(200, { secret: 'the sidecar should have stopped this' });
      if (path === '/call-sample' || path === '/call-sample-by-host') {
        try {
          const byHost = path === '/call-sample-by-host';
          // The path form also claims another workload: the mesh names the caller itself.
          const r = await appRequest(byHost ? `${egress}/api/sample/whoami` : `${egress}/sample/api/sample/whoami`, byHost ? { host: 'sample' } : { 'x-concord-source-workload': 'spoofed' });
          return json(200, { status: r.status, servedBy: r.headers['x-served-by'] ?? null, body: JSON.parse(r.body) });
        } catch (err) {
          return json(502, { error: String(err) });
        }
      }
      json(404, { error: 'not found' });
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    const appPort = (app.address() as AddressInfo).port;
    sys = await startSystem({
      name: 'mesh-sidecar',
      topology: `services:
  - name: sample
  - name: probe
    app: mesh-probe
  - name: legacy
    app: sidecar
    env:
      CONCORD_SIDECAR_SERVICE: legacy
      CONCORD_SIDECAR_UPSTREAM: http://127.0.0.1:${appPort}
      CONCORD_SIDECAR_EGRESS_PORT: '0'
`,
      env: { CONCORD_LOG_LEVEL: 'warn' },
    });
    const legacy = (await http<{ items: Array<{ id: string; meta: Record<string, string> }> }>(`${sys.controlUrl}/api/registry/instances`)).body.items.find(
      (i) => i.id === 'legacy-1',
    );
    assert.ok(legacy?.meta.egressPort, 'the sidecar publishes its egress port');
    egress = `http://127.0.0.1:${legacy.meta.egressPort}`;
  });
  after(async () => {
    await sys?.stop();
    app?.closeAllConnections();
    await new Promise((r) => app?.close(r));
  });

  test('the probe calls the plain app through the mesh: the sidecar registers as legacy, speaks mTLS and tells the app who called', async () => {
    const r = await probe(sys, PROBE, { service: 'legacy', path: '/hello', count: 10, concurrency: 2, includeBody: true });
    for (const x of r.results) {
      assert.equal(x.status, 200, JSON.stringify(x));
      assert.equal(x.servedBy, 'legacy@v1#legacy-1');
      assert.equal(x.body.app, 'legacy');
      assert.equal(x.body.proto, 'https', 'the hop to the sidecar was mutual TLS');
      assert.equal(x.body.xfcc, 'By=spiffe://concord.local/ns/default/sa/legacy;URI=spiffe://concord.local/ns/default/sa/probe');
    }
    assert.ok(
      seen.filter((s) => s.path === '/hello').every((s) => s.traceparent?.startsWith('00-')),
      'the app receives the trace context of the sidecar span',
    );
    const legacy = (await instances(sys.controlUrl)).find((i) => i.id === 'legacy-1');
    assert.equal(legacy?.status, 'passing');
  });

  test('routing and retries apply to the fronted app: an app failing every other call succeeds 100 % with attempts: 3', async () => {
    await applyAndWait(
      sys,
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: legacy}
spec:
  hosts: [legacy]
  http:
  - match:
    - uri: {prefix: /maintenance}
    fault:
      abort: {httpStatus: 503, percentage: {value: 100}}
    route:
    - destination: {host: legacy}
  - retries: {attempts: 3, retryOn: 5xx}
    route:
    - destination: {host: legacy}
`,
      DATA_PLANES,
    );
    flaky = 0;
    const r = await probe(sys, PROBE, { service: 'legacy', path: '/flaky', count: 50, concurrency: 1 });
    assert.equal(r.summary.byStatus['200'], 50, JSON.stringify(r.summary));
    assert.ok(r.results.every((x) => x.attempts === 2));
    const m = await probe(sys, PROBE, { service: 'legacy', path: '/maintenance/x', count: 5, concurrency: 1 });
    assert.ok(
      m.results.every((x) => x.status === 503 && x.flags === 'FI'),
      'the route for /maintenance injects its fault',
    );
    await deleteResource(sys, 'VirtualService', 'legacy');
  });

  test('the sidecar enforces STRICT mTLS and AuthorizationPolicy for the app', async () => {
    const before = seen.length;
    await applyAndWait(
      sys,
      `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: legacy-strict}
spec:
  selector:
    matchLabels: {app: legacy}
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: legacy-no-admin}
spec:
  selector:
    matchLabels: {app: legacy}
  action: DENY
  rules:
  - to:
    - operation:
        paths: [/admin/*]
`,
      DATA_PLANES,
    );
    const port = sys.sup.children.get('legacy-1')?.port as number;
    await assert.rejects(appRequest(`http://127.0.0.1:${port}/hello`), 'a plain HTTP call to the sidecar is refused');
    const ok = await probe(sys, PROBE, { service: 'legacy', path: '/hello', count: 5, concurrency: 1 });
    assert.equal(ok.summary.byStatus['200'], 5, 'mesh calls (mTLS) still pass');
    const denied = await probe(sys, PROBE, { service: 'legacy', path: '/admin/secrets', count: 5, concurrency: 1 });
    assert.equal(denied.summary.byStatus['403'], 5, JSON.stringify(denied.summary));
    assert.ok(
      seen.slice(before).every((s) => s.path !== '/admin/secrets'),
      'a denied request never reaches the app',
    );
    await deleteResource(sys, 'AuthorizationPolicy', 'legacy-no-admin');
    await deleteResource(sys, 'PeerAuthentication', 'legacy-strict');
  });

  test('the app calls another service through the egress port: path form and Host form, with the mesh (mTLS as legacy, routing, faults)', async () => {
    for (const path of ['/call-sample', '/call-sample-by-host']) {
      const r = await probe(sys, PROBE, { service: 'legacy', path, count: 3, concurrency: 1, includeBody: true });
      for (const x of r.results) {
        assert.equal(x.status, 200, JSON.stringify(x));
        assert.equal(x.body.status, 200, JSON.stringify(x.body));
        assert.equal(x.body.servedBy, 'sample@v1#sample-1');
        assert.equal(x.body.body.principal, 'concord.local/ns/default/sa/legacy', "the egress call carries legacy's identity");
        assert.equal(x.body.body.sourceWorkload, 'legacy', 'the caller is named by the mesh, once, whatever the app sent');
      }
    }
    // A VirtualService on sample applies to the app's calls too.
    await applyAndWait(
      sys,
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: sample}
spec:
  hosts: [sample]
  http:
  - fault:
      abort: {httpStatus: 418, percentage: {value: 100}}
    route:
    - destination: {host: sample}
`,
      DATA_PLANES,
    );
    const faulted = await appRequest(`${egress}/sample/api/sample/whoami`);
    assert.equal(faulted.status, 418);
    assert.equal(faulted.headers['x-concord-fault'], 'abort');
    await deleteResource(sys, 'VirtualService', 'sample');

    const unknown = await appRequest(`${egress}/nothing-here/x`);
    assert.equal(unknown.status, 503);
    assert.equal(unknown.headers['x-concord-upstream-failure'], 'no-instances');
    const bad = await appRequest(`${egress}/`);
    assert.equal(bad.status, 400);
  });
});
