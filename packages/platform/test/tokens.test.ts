import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { HttpError } from '../src/service-kit/problem.js';
import { JWT_AUDIENCE, JWT_ISSUER, TokenVerifier } from '../src/auth/tokens.js';

async function setup(nowMs: () => number) {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'EdDSA' };
  let fetches = 0;
  const verifier = new TokenVerifier({
    fetchJwks: async () => {
      fetches++;
      return { keys: [jwk] };
    },
    now: nowMs,
  });
  const sign = (claims: Record<string, unknown>, iatS: number, expS: number) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid: 'k1' }).setIssuer(JWT_ISSUER).setAudience(JWT_AUDIENCE).setSubject('u1').setIssuedAt(iatS).setExpirationTime(expS).sign(privateKey);
  return { verifier, sign, fetches: () => fetches };
}

async function status(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (err) {
    assert.ok(err instanceof HttpError, String(err));
    return err.status;
  }
}

test('a genuine token verifies; past its exp (beyond the 5 s tolerance) it is refused', async () => {
  let now = 1_000_000_000_000;
  const { verifier, sign } = await setup(() => now);
  const token = await sign({ role: 'user' }, now / 1000, now / 1000 + 60);
  assert.equal((await verifier.verify(token)).userId, 'u1');
  now += 64_000;
  assert.equal(await status(verifier.verify(token)), 200, 'within the clock tolerance');
  now += 2_000;
  assert.equal(await status(verifier.verify(token)), 401, 'expired, even though it was cached');
});

test('a token not yet valid (nbf in the future) is refused', async () => {
  const now = 1_000_000_000_000;
  const { verifier, sign } = await setup(() => now);
  const token = await sign({ role: 'user', nbf: now / 1000 + 600 }, now / 1000, now / 1000 + 3600);
  assert.equal(await status(verifier.verify(token)), 401);
});

test('a token without a valid role claim is refused', async () => {
  const now = 1_000_000_000_000;
  const { verifier, sign } = await setup(() => now);
  assert.equal(await status(verifier.verify(await sign({ role: 'root' }, now / 1000, now / 1000 + 60))), 401);
  assert.equal(await status(verifier.verify(await sign({}, now / 1000, now / 1000 + 60))), 401);
});

test('an unknown kid refreshes the JWKS at most once per second', async () => {
  const now = 1_000_000_000_000;
  const { verifier, sign, fetches } = await setup(() => now);
  await verifier.verify(await sign({ role: 'user' }, now / 1000, now / 1000 + 60));
  assert.equal(fetches(), 1);
  const bogus = `${Buffer.from(JSON.stringify({ alg: 'EdDSA', kid: 'nope' })).toString('base64url')}.e30.AAAA`;
  for (let i = 0; i < 5; i++) assert.equal(await status(verifier.verify(bogus)), 401);
  assert.equal(fetches(), 1, 'refreshes are rate limited');
});
