/**
 * Forged tokens for the JWT attack cases: each must be refused with 401 wherever a token is
 * checked (services and gateway).
 */
import { createHmac } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

function parts(token: string): { header: Record<string, unknown>; payload: Record<string, unknown>; sig: string } {
  const [h, p, s] = token.split('.') as [string, string, string];
  return { header: JSON.parse(Buffer.from(h, 'base64url').toString()), payload: JSON.parse(Buffer.from(p, 'base64url').toString()), sig: s };
}

/** Returns named forgeries derived from a valid token and the service's JWKS. */
export async function forgeries(valid: string, jwks: { keys: Array<Record<string, unknown>> }): Promise<Record<string, string>> {
  const { header, payload, sig } = parts(valid);
  const adminPayload = { ...payload, role: 'admin' };
  const out: Record<string, string> = {};
  for (const alg of ['none', 'None', 'NONE', 'nOnE']) out[`alg ${alg}`] = `${b64({ ...header, alg })}.${b64(adminPayload)}.`;
  // HS/RS confusion: HMAC keyed with the public key material.
  const pub = JSON.stringify(jwks.keys[0]);
  const hsHead = b64({ ...header, alg: 'HS256' });
  const hsBody = b64(adminPayload);
  out['HS256 keyed with the public key'] = `${hsHead}.${hsBody}.${createHmac('sha256', pub).update(`${hsHead}.${hsBody}`).digest('base64url')}`;
  const x = String(jwks.keys[0]?.x ?? '');
  out['HS256 keyed with the raw public x'] = `${hsHead}.${hsBody}.${createHmac('sha256', Buffer.from(x, 'base64url')).update(`${hsHead}.${hsBody}`).digest('base64url')}`;
  // An attacker's own key, embedded in the header, and one with a kid not in the JWKS.
  const attacker = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const attackerJwk = await exportJWK(attacker.publicKey);
  const sign = (h: Record<string, unknown>, p: Record<string, unknown>) =>
    new SignJWT(p).setProtectedHeader(h as never).sign(attacker.privateKey);
  out['embedded jwk'] = await sign({ alg: 'EdDSA', kid: header.kid, jwk: attackerJwk }, adminPayload);
  out['embedded jwk without kid'] = await sign({ alg: 'EdDSA', jwk: attackerJwk }, adminPayload);
  out['key not in the JWKS'] = await sign({ alg: 'EdDSA', kid: 'attacker-key' }, adminPayload);
  out['same kid, other key'] = await sign({ alg: 'EdDSA', kid: header.kid }, adminPayload);
  out.expired = await sign({ alg: 'EdDSA', kid: 'attacker-key' }, { ...payload, exp: 1 });
  // Tampering with a genuinely signed token.
  out['tampered payload (role admin)'] = `${b64(header)}.${b64(adminPayload)}.${sig}`;
  out['tampered signature'] = `${b64(header)}.${b64(payload)}.${sig.slice(0, -4)}AAAA`;
  out['stripped signature'] = `${b64(header)}.${b64(payload)}.`;
  out['wrong audience'] = `${b64(header)}.${b64({ ...payload, aud: 'other' })}.${sig}`;
  out.garbage = 'not.a.token';
  return out;
}
