/**
 * This workload's identity: a key pair made locally (the private key never leaves the process)
 * and a short-lived certificate from the control plane's CA, renewed at two thirds of its
 * lifetime. Consumers read `current` (or a SecureContext) and hear about rotations.
 */
import { X509Certificate } from 'node:crypto';
import { type SecureContext, createSecureContext } from 'node:tls';
import { backoffDelayMs } from '@concord/core';
import { Agent, request } from '../http-client/undici.js';
import type { Logger } from '../service-kit/logger.js';
import { newKeyPair } from './ca.js';

export interface IssuedCert {
  certPem: string;
  caPem: string;
  spiffeId: string;
}

export interface IdentityMaterial extends IssuedCert {
  keyPem: string;
  notAfterMs: number;
}

/** Something that turns a public key into a certificate (the CA over HTTP, or in-process). */
export type Issuer = (publicKeyPem: string) => Promise<IssuedCert>;

export function httpIssuer(controlUrl: string, service: string, token: string): Issuer {
  // Not the global fetch: it would load a second HTTP client (Node's bundled undici, ~10 MiB RSS)
  // into every process for one request per certificate lifetime.
  const agent = new Agent({ connections: 1, keepAliveTimeout: 1000, connect: { timeout: 5000 } });
  return async (publicKeyPem) => {
    const res = await request(`${controlUrl}/api/ca/certificates`, {
      dispatcher: agent,
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-concord-bootstrap-token': token },
      body: JSON.stringify({ service, publicKeyPem }),
      signal: AbortSignal.timeout(5000),
    });
    const text = await res.body.text();
    let body: Partial<IssuedCert> & { detail?: string };
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(`the CA answered ${res.statusCode} with a body that is not JSON: ${text.slice(0, 200)}`);
    }
    if (res.statusCode !== 200) throw new Error(`the CA answered ${res.statusCode}: ${body.detail ?? ''}`);
    return body as IssuedCert;
  };
}

export class WorkloadIdentity {
  private material: IdentityMaterial | null = null;
  private serverCtx: SecureContext | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly listeners = new Set<(m: IdentityMaterial) => void>();
  private closed = false;

  constructor(private readonly issuer: Issuer, private readonly log: Logger) {}

  get current(): IdentityMaterial | null {
    return this.material;
  }

  /** A server-side TLS context that asks for and verifies client certificates. */
  get serverContext(): SecureContext | null {
    return this.serverCtx;
  }

  onRotate(fn: (m: IdentityMaterial) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Gets the first certificate, retrying while the CA is unreachable (up to maxWaitMs). */
  async start(maxWaitMs = 30_000): Promise<void> {
    const deadline = Date.now() + maxWaitMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.renew();
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`no workload certificate: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, backoffDelayMs({ baseMs: 100, capMs: 2000, equalJitter: true }, attempt, Math.random)));
      }
    }
  }

  private async renew(): Promise<void> {
    const kp = newKeyPair();
    const issued = await this.issuer(kp.publicKeyPem);
    const notAfterMs = Date.parse(new X509Certificate(issued.certPem).validTo);
    const m: IdentityMaterial = { ...issued, keyPem: kp.privateKeyPem, notAfterMs };
    this.material = m;
    this.serverCtx = createSecureContext({ key: m.keyPem, cert: m.certPem, ca: m.caPem });
    for (const fn of this.listeners) fn(m);
    this.schedule(m);
  }

  private schedule(m: IdentityMaterial, attempt = 0): void {
    if (this.closed) return;
    const lifetime = m.notAfterMs - Date.now();
    const delay = attempt === 0 ? Math.max(1000, (lifetime * 2) / 3) : backoffDelayMs({ baseMs: 250, capMs: 5000, equalJitter: true }, attempt, Math.random);
    this.timer = setTimeout(() => {
      this.renew().catch((err) => {
        this.log.warn({ err: String(err), expiresInMs: m.notAfterMs - Date.now() }, 'certificate renewal failed; retrying');
        this.schedule(m, attempt + 1);
      });
    }, delay);
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
