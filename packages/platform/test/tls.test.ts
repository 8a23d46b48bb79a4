import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createServer as httpServer, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { test } from 'node:test';
import { createLogger } from '../src/service-kit/logger.js';
import { issueWorkloadCert, newKeyPair, newRootCa, spiffeOfCert } from '../src/tls/ca.js';
import { WorkloadIdentity } from '../src/tls/identity.js';
import { InboundListener, peerPrincipal } from '../src/tls/inbound.js';

const log = createLogger({ service: 'test', instance: 'test', version: 'v1' }, 'silent');
const ca = newRootCa();

function identityOf(root: ReturnType<typeof newRootCa>, service: string, ttlMs = 3_600_000): WorkloadIdentity {
  return new WorkloadIdentity(async (publicKeyPem) => ({ certPem: issueWorkloadCert(root, `spiffe://concord.local/ns/default/sa/${service}`, publicKeyPem, ttlMs), caPem: root.certPem, spiffeId: service }), log);
}

test('the CA issues a v3 workload certificate with the SPIFFE id as URI SAN, verifiable against the root', () => {
  const kp = newKeyPair();
  const cert = new X509Certificate(issueWorkloadCert(ca, 'spiffe://concord.local/ns/default/sa/order', kp.publicKeyPem, 60_000));
  const root = new X509Certificate(ca.certPem);
  assert.ok(root.ca, 'the root is a CA');
  assert.equal(cert.ca, false);
  assert.ok(cert.verify(root.publicKey), 'signed by the root');
  assert.ok(cert.checkIssued(root));
  assert.match(cert.subjectAltName ?? '', /URI:spiffe:\/\/concord\.local\/ns\/default\/sa\/order/);
  assert.equal(spiffeOfCert({ subjectaltname: cert.subjectAltName }), 'spiffe://concord.local/ns/default/sa/order');
  const lifetime = Date.parse(cert.validTo) - Date.now();
  assert.ok(lifetime > 55_000 && lifetime <= 60_000, `short-lived: ${lifetime} ms`);
});

test('an identity renews its certificate before expiry and tells listeners', async () => {
  let issued = 0;
  const id = new WorkloadIdentity(async (pub) => {
    issued++;
    return { certPem: issueWorkloadCert(ca, 'spiffe://concord.local/ns/default/sa/x', pub, 1500), caPem: ca.certPem, spiffeId: 'x' };
  }, log);
  await id.start();
  const first = id.current?.certPem;
  // 1.5 s of lifetime: renewal at two thirds, with a 1 s floor.
  const rotated = await new Promise<boolean>((resolve) => {
    const t = setTimeout(() => resolve(false), 5000);
    id.onRotate(() => {
      clearTimeout(t);
      resolve(true);
    });
  });
  id.close();
  assert.ok(rotated, 'rotated');
  assert.equal(issued, 2);
  assert.notEqual(id.current?.certPem, first);
});

async function listener(mode: () => 'STRICT' | 'PERMISSIVE' | 'DISABLE') {
  const server = identityOf(ca, 'payment');
  await server.start();
  const http = httpServer((req, res) => res.end(peerPrincipal(req.socket) ?? 'plaintext'));
  const inbound = new InboundListener(http, server, { mode });
  const port = await inbound.listen(0, '127.0.0.1');
  const stop = () => {
    inbound.close();
    http.closeAllConnections();
    server.close();
  };
  return { port, inbound, server, stop };
}

function get(port: number, tls: { key: string; cert: string; ca: string } | null): Promise<string> {
  return new Promise((resolve) => {
    const opts = { host: '127.0.0.1', port, path: '/', agent: false as const };
    const req = tls ? httpsRequest({ ...opts, ...tls, checkServerIdentity: () => undefined }) : httpRequest(opts);
    req.on('response', (res) => {
      let b = '';
      res.on('data', (d) => (b += d));
      res.on('end', () => resolve(b));
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve(`ERR ${e.code ?? e.message}`));
    req.end();
  });
}

test('PERMISSIVE takes plaintext and mutual TLS on one port, and knows the TLS peer principal', async () => {
  const { port, inbound, stop } = await listener(() => 'PERMISSIVE');
  const client = identityOf(ca, 'order');
  await client.start();
  const m = client.current!;
  client.close();
  assert.equal(await get(port, null), 'plaintext');
  assert.equal(await get(port, { key: m.keyPem, cert: m.certPem, ca: m.caPem }), 'concord.local/ns/default/sa/order');
  assert.equal(inbound.stats.tls, 1);
  assert.equal(inbound.stats.plaintext, 1);
  stop();
});

test('STRICT refuses plaintext and a certificate from another CA; mutual TLS from the mesh passes', async () => {
  const { port, inbound, stop } = await listener(() => 'STRICT');
  const client = identityOf(ca, 'order');
  await client.start();
  const m = client.current!;
  assert.match(await get(port, null), /^ERR /);
  const other = newRootCa();
  const stranger = identityOf(other, 'order');
  await stranger.start();
  const s = stranger.current!;
  assert.match(await get(port, { key: s.keyPem, cert: s.certPem, ca: ca.certPem }), /^ERR /, 'a foreign client certificate is refused');
  assert.equal(await get(port, { key: m.keyPem, cert: m.certPem, ca: m.caPem }), 'concord.local/ns/default/sa/order');
  assert.equal(inbound.stats.refusedPlaintext, 1);
  assert.equal(inbound.stats.failedHandshakes, 1);
  stop();
});

test('DISABLE refuses TLS and serves plaintext', async () => {
  const { port, inbound, stop } = await listener(() => 'DISABLE');
  const client = identityOf(ca, 'order');
  await client.start();
  const m = client.current!;
  assert.match(await get(port, { key: m.keyPem, cert: m.certPem, ca: m.caPem }), /^ERR /);
  assert.equal(await get(port, null), 'plaintext');
  stop();
});
