/**
 * The control plane's certificate authority. The root key lives in `<data dir>/ca/` (0600) and
 * survives restarts. A workload proves which service it is with a bootstrap token —
 * HMAC-SHA256(bootstrap secret, service name) — that the supervisor hands to each process it
 * starts (Istio checks a Kubernetes service-account token instead). Certificates are short-lived
 * and carry the SPIFFE id spiffe://concord.local/ns/default/sa/<service>.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mesh } from '@concord/core';
import { HttpError, type RootCa, badRequest, bootstrapToken, issueWorkloadCert, newRootCa } from '@concord/platform';
import type { FastifyInstance } from 'fastify';

const SERVICE = /^[a-z][a-z0-9-]{0,62}$/;
const MAX_PUBLIC_KEY_CHARS = 1000;


function writeSecret(path: string, data: string | Buffer): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode: 0o600 });
  renameSync(tmp, path);
}

export class CertificateAuthority {
  readonly root: RootCa;
  readonly secret: Buffer;

  constructor(readonly dir: string, private readonly certTtlMs: number) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const certFile = join(dir, 'root.pem');
    const keyFile = join(dir, 'root-key.pem');
    const secretFile = join(dir, 'bootstrap-secret');
    if (existsSync(certFile) && existsSync(keyFile)) {
      this.root = { certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8') };
    } else {
      this.root = newRootCa();
      writeSecret(keyFile, this.root.keyPem);
      writeSecret(certFile, this.root.certPem);
    }
    if (!existsSync(secretFile)) writeSecret(secretFile, randomBytes(32).toString('hex'));
    this.secret = Buffer.from(readFileSync(secretFile, 'utf8').trim(), 'hex');
  }

  /** Issues a certificate for `service` when `token` proves the caller may have it. */
  sign(service: string, publicKeyPem: string, token: string): { certPem: string; caPem: string; spiffeId: string; notAfter: string } {
    const expected = Buffer.from(bootstrapToken(this.secret, service), 'hex');
    const given = Buffer.from(/^[0-9a-f]{64}$/.test(token) ? token : '', 'hex');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new HttpError(403, 'bad-bootstrap-token', `the bootstrap token does not entitle the caller to an identity for "${service}"`);
    }
    return this.issue(service, publicKeyPem);
  }

  /** Issues without a token: for the control plane's own identity only. */
  issue(service: string, publicKeyPem: string): { certPem: string; caPem: string; spiffeId: string; notAfter: string } {
    const spiffeId = mesh.spiffeId(service);
    let certPem: string;
    try {
      certPem = issueWorkloadCert(this.root, spiffeId, publicKeyPem, this.certTtlMs);
    } catch {
      throw badRequest([{ path: '/body/publicKeyPem', message: 'is not a PEM public key (SPKI)' }]);
    }
    return { certPem, caPem: this.root.certPem, spiffeId, notAfter: new Date(Date.now() + this.certTtlMs).toISOString() };
  }
}

export function caRoutes(app: FastifyInstance, ca: CertificateAuthority): void {
  app.get('/api/ca/root', async (_req, reply) => {
    reply.type('application/x-pem-file');
    return ca.root.certPem;
  });
  app.post<{ Body: { service: string; publicKeyPem: string } }>(
    '/api/ca/certificates',
    {
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['service', 'publicKeyPem'],
          properties: { service: { type: 'string', pattern: SERVICE.source }, publicKeyPem: { type: 'string', minLength: 50, maxLength: MAX_PUBLIC_KEY_CHARS } },
        },
      },
    },
    async (req) => {
      const token = req.headers['x-concord-bootstrap-token'];
      if (typeof token !== 'string') throw new HttpError(401, 'missing-bootstrap-token', 'send x-concord-bootstrap-token (the supervisor sets CONCORD_CA_TOKEN for each process)');
      return ca.sign(req.body.service, req.body.publicKeyPem, token);
    },
  );
}
