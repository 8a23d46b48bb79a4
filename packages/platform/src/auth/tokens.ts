/**
 * JWT verification for every service: tokens issued by the user service (EdDSA), checked
 * against its JWKS (cached, refreshed on an unknown `kid`), with the algorithm pinned and
 * `exp`/`nbf`/`iss`/`aud` enforced. Verified tokens are cached until they expire.
 */
import type { JSONWebKeySet, createLocalJWKSet } from 'jose';
import { HttpError } from '../service-kit/problem.js';

/**
 * jose is loaded by the first token checked: every process imports this module, and the ones
 * that never see a token (recommendation, the control plane) are spared its ~5 MiB of RSS.
 */
let joseModule: Promise<typeof import('jose')> | null = null;
const jose = () => (joseModule ??= import('jose'));

export const JWT_ALG = 'EdDSA';
export const JWT_ISSUER = 'concord-user';
export const JWT_AUDIENCE = 'concord';

export type Role = 'user' | 'admin';

export interface Identity {
  userId: string;
  role: Role;
  email: string;
  /** Expiry, ms since epoch. */
  expMs: number;
}

const MAX_CACHED_TOKENS = 10_000;
const MAX_TOKEN_CHARS = 4096;
const JWKS_REFRESH_MIN_INTERVAL_MS = 1000;
const CLOCK_TOLERANCE_S = 5;

export function unauthorized(detail: string): HttpError {
  return new HttpError(401, 'unauthorized', detail, {}, { 'www-authenticate': 'Bearer realm="concord"' });
}

export class TokenVerifier {
  private keyset: ReturnType<typeof createLocalJWKSet> | null = null;
  private kids = new Set<string>();
  private lastFetchMs = 0;
  private fetching: Promise<void> | null = null;
  private readonly cache = new Map<string, Identity>();

  constructor(private readonly opts: { fetchJwks: () => Promise<JSONWebKeySet>; now?: () => number }) {}

  private now(): number {
    return this.opts.now ? this.opts.now() : Date.now();
  }

  private async refresh(force: boolean): Promise<void> {
    if (!force && this.keyset) return;
    if (force && this.now() - this.lastFetchMs < JWKS_REFRESH_MIN_INTERVAL_MS && this.keyset) return;
    this.fetching ??= (async () => {
      try {
        const jwks = await this.opts.fetchJwks();
        this.keyset = (await jose()).createLocalJWKSet(jwks);
        this.kids = new Set(jwks.keys.map((k) => k.kid).filter((k): k is string => typeof k === 'string'));
        this.lastFetchMs = this.now();
      } finally {
        this.fetching = null;
      }
    })();
    await this.fetching;
  }

  /** Verifies a bearer token; throws a 401 HttpError for anything wrong with it. */
  async verify(token: string): Promise<Identity> {
    const hit = this.cache.get(token);
    if (hit) {
      if (hit.expMs > this.now()) return hit;
      this.cache.delete(token);
    }
    if (token.length > MAX_TOKEN_CHARS) throw unauthorized('the token is too long');
    const { decodeProtectedHeader, errors: joseErrors, jwtVerify } = await jose();
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw unauthorized('the token is malformed');
    }
    if (header.alg !== JWT_ALG) throw unauthorized(`the token algorithm must be ${JWT_ALG}`);
    if ('jwk' in header || 'jku' in header || 'x5u' in header || 'x5c' in header) throw unauthorized('tokens carrying their own key are refused');
    if (typeof header.kid !== 'string') throw unauthorized('the token has no key id');
    try {
      await this.refresh(false);
      if (!this.kids.has(header.kid)) await this.refresh(true);
    } catch (err) {
      throw new HttpError(503, 'auth-unavailable', `cannot fetch the signing keys: ${(err as Error).message}`);
    }
    if (!this.kids.has(header.kid) || !this.keyset) throw unauthorized('the token was signed by an unknown key');
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.keyset, {
        algorithms: [JWT_ALG],
        issuer: JWT_ISSUER,
        audience: JWT_AUDIENCE,
        requiredClaims: ['exp', 'sub', 'iat'],
        clockTolerance: CLOCK_TOLERANCE_S,
        currentDate: new Date(this.now()),
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw unauthorized('the token has expired');
      if (err instanceof joseErrors.JWTClaimValidationFailed) throw unauthorized(`the token claim "${err.claim}" is invalid`);
      throw unauthorized('the token signature is invalid');
    }
    const role = payload.role;
    if (typeof payload.sub !== 'string' || (role !== 'user' && role !== 'admin') || typeof payload.exp !== 'number') {
      throw unauthorized('the token claims are incomplete');
    }
    const identity: Identity = { userId: payload.sub, role, email: typeof payload.email === 'string' ? payload.email : '', expMs: payload.exp * 1000 };
    if (this.cache.size >= MAX_CACHED_TOKENS) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(token, identity);
    return identity;
  }
}

/** Extracts the bearer token of an Authorization header. */
export function bearerToken(header: string | string[] | undefined): string {
  if (typeof header !== 'string' || header.length === 0) throw unauthorized('sign in: send Authorization: Bearer <token>');
  const m = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)$/i.exec(header.trim());
  if (!m) throw unauthorized('the Authorization header must be "Bearer <token>"');
  return m[1] as string;
}
