/** The user service: registration, login, roles, JWKS and token verification, on real processes. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ADMIN_ENV, type System, TEST_ADMIN, adminLogin, http, newUser, serviceUrl, startSystem } from './harness.js';
import { forgeries } from './jwt-attacks.js';

let sys: System;
let base: string;

before(async () => {
  sys = await startSystem({ name: 'user', topology: 'services:\n  - name: user\n    instances: 2\n', env: { ...ADMIN_ENV, CONCORD_SCRYPT_COST: '12' } });
  base = await serviceUrl(sys.controlUrl, 'user');
});
after(() => sys?.stop());

describe('accounts', () => {
  test('register → 201 {id, email, name}; the same email again → 409', async () => {
    const email = `Someone-${Date.now()}@Example.test`;
    const r = await http(`${base}/api/auth/register`, { method: 'POST', json: { email, password: 'long enough pw', name: 'Some One' } });
    assert.equal(r.status, 201);
    assert.deepEqual(Object.keys(r.body).sort(), ['email', 'id', 'name']);
    assert.equal(r.body.email, email.toLowerCase());
    const again = await http(`${base}/api/auth/register`, { method: 'POST', json: { email: email.toUpperCase(), password: 'long enough pw', name: 'x' } });
    assert.equal(again.status, 409);
    assert.match(again.headers.get('content-type') ?? '', /problem\+json/);
  });

  test('login returns a bearer token with expiresIn; /api/users/me answers with role user', async () => {
    const u = await newUser(base);
    const me = await http(`${base}/api/users/me`, { headers: u.auth });
    assert.equal(me.status, 200);
    assert.deepEqual(me.body, { id: u.id, email: u.email, name: 'Test user', role: 'user' });
    const r = await http(`${base}/api/auth/login`, { method: 'POST', json: { email: u.email, password: 'correct horse battery staple' } });
    assert.equal(r.body.expiresIn, 3600);
  });

  test('a wrong password and an unknown email both answer 401 with the same message', async () => {
    const u = await newUser(base);
    const wrong = await http(`${base}/api/auth/login`, { method: 'POST', json: { email: u.email, password: 'not the password' } });
    const unknown = await http(`${base}/api/auth/login`, { method: 'POST', json: { email: 'nobody@example.test', password: 'whatever123' } });
    assert.equal(wrong.status, 401);
    assert.equal(unknown.status, 401);
    assert.equal(wrong.body.detail, unknown.body.detail);
  });

  test('the seeded admin logs in with role admin; the password is never stored in clear', async () => {
    const a = await adminLogin(base);
    const me = await http(`${base}/api/users/me`, { headers: a.auth });
    assert.equal(me.body.role, 'admin');
    assert.equal(me.body.email, TEST_ADMIN.email);
    const db = readFileSync(join(sys.dataDir, 'user', 'user.db'));
    assert.equal(db.includes(Buffer.from(TEST_ADMIN.password)), false);
  });

  test('both user instances share one signing key: a token from one is valid at the other', async () => {
    const all = (await http(`${sys.controlUrl}/v1/health/service/user?passing=1`)).body as Array<{ Service: { Port: number } }>;
    assert.equal(all.length, 2);
    const [a, b] = all.map((e) => `http://127.0.0.1:${e.Service.Port}`) as [string, string];
    const u = await newUser(a);
    assert.equal((await http(`${b}/api/users/me`, { headers: u.auth })).status, 200);
    assert.deepEqual((await http(`${a}/.well-known/jwks.json`)).body, (await http(`${b}/.well-known/jwks.json`)).body);
  });

  test('bad input answers 400 naming the field and creates nothing', async () => {
    const cases: Array<[unknown, string]> = [
      [{ email: 'not-an-email', password: 'long enough pw', name: 'x' }, '/body/email'],
      [{ email: 'a@b.test', password: 'short', name: 'x' }, '/body/password'],
      [{ email: 'a@b.test', password: 'long enough pw' }, '/body/name'],
      [{ email: 'a@b.test', password: 'long enough pw', name: '   ' }, '/body/name'],
      [{ email: 'a@b.test', password: 'long enough pw', name: 'x', role: 'admin' }, '/body/role'],
      [{ email: 5, password: 'long enough pw', name: 'x' }, '/body/email'],
    ];
    for (const [body, path] of cases) {
      const r = await http(`${base}/api/auth/register`, { method: 'POST', json: body });
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.errors[0].path, path, JSON.stringify(r.body));
    }
    const login400 = await http(`${base}/api/auth/login`, { method: 'POST', body: '{"email":', headers: { 'content-type': 'application/json' } });
    assert.equal(login400.status, 400);
    assert.equal((await http(`${base}/api/auth/login`, { method: 'POST', json: { email: 'a@b.test', password: 'long enough pw' } })).status, 401);
  });
});

describe('tokens', () => {
  test('JWKS publishes one Ed25519 public key with kid and alg EdDSA, and no private part', async () => {
    const jwks = (await http(`${base}/.well-known/jwks.json`)).body;
    assert.equal(jwks.keys.length, 1);
    const k = jwks.keys[0];
    assert.equal(k.kty, 'OKP');
    assert.equal(k.crv, 'Ed25519');
    assert.equal(k.alg, 'EdDSA');
    assert.ok(k.kid);
    assert.equal(k.d, undefined);
  });

  test('every forged token is refused with 401 problem+json', async () => {
    const u = await newUser(base);
    const jwks = (await http(`${base}/.well-known/jwks.json`)).body;
    const forged = await forgeries(u.token, jwks);
    assert.ok(Object.keys(forged).length >= 12);
    for (const [name, token] of Object.entries(forged)) {
      const r = await http(`${base}/api/users/me`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(r.status, 401, `${name}: ${r.text}`);
      assert.match(r.headers.get('content-type') ?? '', /problem\+json/, name);
    }
    assert.equal((await http(`${base}/api/users/me`)).status, 401, 'no token');
    assert.equal((await http(`${base}/api/users/me`, { headers: { authorization: `Basic ${u.token}` } })).status, 401, 'wrong scheme');
    assert.equal((await http(`${base}/api/users/me`, { headers: u.auth })).status, 200, 'the genuine token still works');
  });

  test('tokens carry iss, aud, nbf and expire after the configured TTL', async () => {
    const u = await newUser(base);
    const payload = JSON.parse(Buffer.from(u.token.split('.')[1]!, 'base64url').toString());
    assert.equal(payload.exp - payload.iat, 3600);
    assert.ok(payload.nbf <= payload.iat);
    assert.equal(payload.iss, 'concord-user');
    assert.equal(payload.aud, 'concord');
    assert.equal(payload.sub, u.id);
    assert.equal(payload.role, 'user');
  });
});
