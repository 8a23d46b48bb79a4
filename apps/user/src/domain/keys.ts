/**
 * The user service's signing key: an Ed25519 key pair kept in the data dir, shared by every
 * user instance (the first creates it atomically; the others read it). Public keys are served
 * as a JWKS.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync, linkSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { type CryptoKey, type JWK, type KeyObject, SignJWT, exportJWK, generateKeyPair, importJWK } from 'jose';
import { JWT_ALG, JWT_AUDIENCE, JWT_ISSUER, type Role } from '@concord/platform';

interface KeyFile {
  kid: string;
  createdAt: string;
  privateJwk: JWK;
  publicJwk: JWK;
}

export interface SigningKey {
  kid: string;
  privateKey: CryptoKey | KeyObject | Uint8Array;
  publicJwk: JWK;
}

export async function loadOrCreateKey(path: string): Promise<SigningKey> {
  mkdirSync(dirname(path), { recursive: true });
  let file: KeyFile;
  try {
    file = JSON.parse(readFileSync(path, 'utf8')) as KeyFile;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`the signing key file ${path} is unreadable: ${(err as Error).message}`);
    const { privateKey, publicKey } = await generateKeyPair(JWT_ALG, { crv: 'Ed25519', extractable: true });
    const kid = randomBytes(8).toString('hex');
    const candidate: KeyFile = {
      kid,
      createdAt: new Date().toISOString(),
      privateJwk: { ...(await exportJWK(privateKey)), kid, alg: JWT_ALG, use: 'sig' },
      publicJwk: { ...(await exportJWK(publicKey)), kid, alg: JWT_ALG, use: 'sig' },
    };
    // Write aside, then link into place: exactly one process wins; the others read the winner's key.
    const tmp = `${path}.${process.pid}.${kid}.tmp`;
    writeFileSync(tmp, JSON.stringify(candidate), { mode: 0o600 });
    try {
      linkSync(tmp, path);
    } catch (linkErr) {
      if ((linkErr as NodeJS.ErrnoException).code !== 'EEXIST') {
        renameSync(tmp, path);
      }
    } finally {
      try {
        unlinkSync(tmp);
      } catch {
        /* renamed */
      }
    }
    file = JSON.parse(readFileSync(path, 'utf8')) as KeyFile;
  }
  return { kid: file.kid, privateKey: await importJWK(file.privateJwk, JWT_ALG), publicJwk: file.publicJwk };
}

export async function signToken(key: SigningKey, claims: { sub: string; role: Role; email: string }, ttlS: number): Promise<string> {
  return new SignJWT({ role: claims.role, email: claims.email })
    .setProtectedHeader({ alg: JWT_ALG, kid: key.kid, typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuer(JWT_ISSUER)
    .setAudience(JWT_AUDIENCE)
    .setIssuedAt()
    .setNotBefore('0s')
    .setExpirationTime(`${ttlS}s`)
    .sign(key.privateKey);
}
