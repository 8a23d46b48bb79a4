/**
 * Mutual TLS and authorization on real processes. The topology runs the probe app under the
 * names payment, order and points: a workload's identity is its certificate, and the
 * supervisor's bootstrap token entitles each process to the certificate of its topology name, so
 * these processes ARE payment, order and points as far as the mesh can tell.
 *
 * Checked: PERMISSIVE accepts plaintext and mTLS; STRICT refuses a plaintext connection and a
 * certificate from another CA before any HTTP answer, while mesh calls (auto mTLS) and health
 * checks keep working; an AuthorizationPolicy letting only order call payment answers 403 to
 * points.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { mesh } from '@concord/core';
import { BOOTSTRAP_SECRET_PATH, bootstrapToken, issueWorkloadCert, newKeyPair, newRootCa } from '@concord/platform';
import { type System, http, instances, pollUntil, startSystem } from './harness.js';
import { applyAndWait, probe } from './mesh-helpers.js';

const PROBES = ['payment-1', 'order-1', 'points-1'];

const TOPOLOGY = `services:
  - name: payment
    app: mesh-probe
    env: {CONCORD_PROBE_SERVICE: payment}
  - name: order
    app: mesh-probe
    env: {CONCORD_PROBE_SERVICE: order}
  - name: points
    app: mesh-probe
    env: {CONCORD_PROBE_SERVICE: points}
`;

const STRICT_AND_AUTHZ = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: payment-strict}
spec:
  selector:
    matchLabels: {app: payment}
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: payment-only-order}
spec:
  selector:
    matchLabels: {app: payment}
  action: ALLOW
  rules:
  - from:
    - source:
        principals: [cluster.local/ns/default/sa/order]
`;

/** What a raw connection got back for a plain HTTP request: the bytes, and how it ended. */
function plainRequest(port: number, path: string): Promise<{ answer: string; ended: string }> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    let answer = '';
    const timer = setTimeout(() => socket.destroy(new Error('no answer and no close within 5 s')), 5000);
    socket.on('connect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: payment\r\nConnection: close\r\n\r\n`));
    socket.on('data', (d) => (answer += d.toString('latin1')));
    socket.on('error', (err) => {
      clearTimeout(timer);
      resolve({ answer, ended: `error ${(err as NodeJS.ErrnoException).code ?? err.message}` });
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ answer, ended: 'closed' });
    });
  });
}

/** An HTTPS request with the given client certificate: the HTTP answer, or how the connection ended without one. */
function tlsRequest(port: number, path: string, client: { key: string; cert: string; ca: string }): Promise<{ answer: string; ended: string }> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, key: client.key, cert: client.cert, ca: client.ca, checkServerIdentity: () => undefined });
    let answer = '';
    let done = false;
    const finish = (ended: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ answer, ended });
    };
    const timer = setTimeout(() => {
      socket.destroy();
      finish('no answer and no close within 5 s');
    }, 5000);
    socket.on('secureConnect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: payment\r\nConnection: close\r\n\r\n`));
    socket.on('data', (d) => (answer += d.toString('latin1')));
    socket.on('error', (err) => finish(`error ${(err as NodeJS.ErrnoException).code ?? err.message}`));
    socket.on('close', () => finish('closed'));
  });
}

describe('mesh security: mutual TLS, PeerAuthentication and AuthorizationPolicy', () => {
  let sys: System;
  let paymentPort: number;
  let rootPem: string;

  before(async () => {
    sys = await startSystem({
      name: 'mesh-security',
      topology: TOPOLOGY,
      env: { CONCORD_LOG_LEVEL: 'warn', CONCORD_CHECK_INTERVAL: '200ms', CONCORD_CHECK_TIMEOUT: '500ms' },
    });
    paymentPort = sys.sup.children.get('payment-1')?.port as number;
    rootPem = (await http(`${sys.controlUrl}/api/ca/root`)).text;
  });
  after(() => sys?.stop());

  /** A real certificate for `service`, as the supervisor's token entitles a process to. */
  async function meshCert(service: string): Promise<{ key: string; cert: string; ca: string }> {
    const secret = Buffer.from(readFileSync(join(sys.dataDir, ...BOOTSTRAP_SECRET_PATH), 'utf8').trim(), 'hex');
    const kp = newKeyPair();
    const r = await http(`${sys.controlUrl}/api/ca/certificates`, {
      method: 'POST',
      headers: { 'x-concord-bootstrap-token': bootstrapToken(secret, service) },
      json: { service, publicKeyPem: kp.publicKeyPem },
    });
    assert.equal(r.status, 200, r.text);
    return { key: kp.privateKeyPem, cert: r.body.certPem, ca: r.body.caPem };
  }

  test('PERMISSIVE (the default): plaintext and mutual TLS are both accepted; mesh calls use mTLS on their own', async () => {
    const plain = await plainRequest(paymentPort, '/api/probe/whoami');
    assert.match(plain.answer, /^HTTP\/1\.1 200/);
    assert.match(plain.answer, /"principal":null/);
    const r = await probe(sys, 'order-1', { service: 'payment', path: '/api/probe/whoami', count: 5, concurrency: 1, includeBody: true });
    assert.ok(
      r.results.every((x) => x.status === 200 && x.body.principal === 'concord.local/ns/default/sa/order'),
      JSON.stringify(r.results[0]),
    );
  });

  test('STRICT: a plain HTTP call to the service port is refused before any HTTP answer', async () => {
    await applyAndWait(sys, STRICT_AND_AUTHZ, PROBES);
    const plain = await plainRequest(paymentPort, '/health/live');
    assert.equal(plain.answer, '', `no HTTP answer to plaintext, got ${JSON.stringify(plain.answer.slice(0, 80))}`);
    assert.match(plain.ended, /closed|ECONNRESET|EPIPE/);
  });

  test('STRICT: a client certificate from another CA is refused; one from the mesh CA is accepted', async () => {
    const other = newRootCa();
    const kp = newKeyPair();
    // The right name (order's SPIFFE id), the wrong issuer.
    const forged = { key: kp.privateKeyPem, cert: issueWorkloadCert(other, mesh.spiffeId('order'), kp.publicKeyPem, 600_000), ca: rootPem };
    const refused = await tlsRequest(paymentPort, '/api/probe/whoami', forged);
    assert.equal(refused.answer, '', `no HTTP answer with a foreign certificate, got ${JSON.stringify(refused.answer.slice(0, 80))}`);
    assert.match(refused.ended, /closed|error/);

    const genuine = await tlsRequest(paymentPort, '/api/probe/whoami', await meshCert('order'));
    assert.match(genuine.answer, /^HTTP\/1\.1 200/, genuine.ended);
    assert.match(genuine.answer, /"principal":"concord\.local\/ns\/default\/sa\/order"/);
  });

  test('AuthorizationPolicy: only order may call payment — order gets 200, points gets 403 from payment', async () => {
    const fromOrder = await probe(sys, 'order-1', { service: 'payment', path: '/api/probe/whoami', count: 20, concurrency: 4 });
    assert.equal(fromOrder.summary.byStatus['200'], 20, JSON.stringify(fromOrder.summary));
    const fromPoints = await probe(sys, 'points-1', { service: 'payment', path: '/api/probe/whoami', count: 20, concurrency: 4, includeBody: true });
    assert.equal(fromPoints.summary.byStatus['403'], 20, JSON.stringify(fromPoints.summary));
    for (const x of fromPoints.results) {
      assert.equal(x.servedBy, 'payment@v1#payment-1', 'the 403 comes from payment itself');
      assert.equal(x.attempts, 1, 'a 403 is final, not retried');
      assert.match(x.body.detail, /RBAC: access denied/);
    }
    // The policy is on payment only: points itself still takes calls from anyone in the mesh.
    const toPoints = await probe(sys, 'order-1', { service: 'points', path: '/api/probe/whoami', count: 5, concurrency: 1 });
    assert.equal(toPoints.summary.byStatus['200'], 5);
  });

  test('health checks keep working under STRICT: payment stays passing, and a restarted payment becomes passing again', async () => {
    // Observed over 10 check intervals (the checks speak mTLS with the control plane's certificate).
    const until = Date.now() + 2000;
    while (Date.now() < until) {
      const p = (await instances(sys.controlUrl)).find((i) => i.id === 'payment-1');
      assert.equal(p?.status, 'passing', JSON.stringify(p));
      await new Promise((r) => setTimeout(r, 100));
    }
    await sys.sup.hold('payment-1');
    const restarted = await sys.sup.unhold('payment-1');
    await pollUntil(
      'the restarted payment passing under STRICT',
      async () => (await instances(sys.controlUrl)).some((i) => i.id === 'payment-1' && i.port === restarted.port && i.status === 'passing'),
      15_000,
    );
    const plain = await plainRequest(restarted.port as number, '/health/ready');
    assert.equal(plain.answer, '', 'the restarted instance is STRICT from its first connection');
    // The registry passing the new instance and order's watch delivering it are two events: wait
    // for order's mesh client to reach the new address before counting its calls.
    await pollUntil(
      "order's mesh client reaching the restarted payment",
      async () => (await probe(sys, 'order-1', { service: 'payment', path: '/api/probe/whoami', count: 1, concurrency: 1 })).summary.byStatus['200'] === 1,
      15_000,
    );
    const fromOrder = await probe(sys, 'order-1', { service: 'payment', path: '/api/probe/whoami', count: 10, concurrency: 2 });
    assert.equal(fromOrder.summary.byStatus['200'], 10, JSON.stringify(fromOrder.summary));
  });
});
