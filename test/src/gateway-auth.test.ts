/**
 * The gateway's authentication and authorisation, on real processes: every public route ×
 * {no token, bad token, another user's token, own token, admin} answers by its documented
 * rule, and every JWT attack is refused with 401 at the gateway (before any service sees it).
 */
import assert from 'node:assert/strict';
import { type JsonWebKey, createPrivateKey, randomBytes, randomUUID, sign as signBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT } from '@concord/cli';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { ADMIN_ENV, adminLogin, http, type JsonResponse, login, newUser, ONE_OF_EACH, pollUntil, startSystem, type System, type TestUser } from './harness.js';
import { forgeries } from './jwt-attacks.js';
import { placeOrder } from './order-helpers.js';


let sys: System;
let gw: string;
let alice: TestUser;
let bob: TestUser;
let admin: { id: string; token: string };
/** Orders of alice: one to read, one to cancel. */
let aliceOrder: string;
let aliceOrderToCancel: string;

before(async () => {
  sys = await startSystem({
    name: 'gateway-auth',
    topology: ONE_OF_EACH,
    env: { ...ADMIN_ENV, CONCORD_SEED_PRODUCTS: '5', CONCORD_SCRYPT_COST: '10', CONCORD_CHECK_INTERVAL: '300ms', CONCORD_RATE_LIMIT_PER_USER: '0', CONCORD_RATE_LIMIT_PER_IP: '0' },
  });
  gw = sys.gatewayUrl as string;
  [alice, bob] = await Promise.all([newUser(gw, 'alice'), newUser(gw, 'bob')]);
  const a = await adminLogin(gw);
  admin = { id: claims(a.token).sub as string, token: a.token };
  // Wallets are created through the user service's outbox: wait until both exist.
  for (const u of [alice, bob]) await pollUntil(`wallet of ${u.email}`, async () => (await http(`${gw}/api/wallet`, { headers: u.auth })).status === 200);
  const [o1, o2] = await Promise.all([placeOrder(gw, alice.auth, [{ productId: 'p-0001', quantity: 1 }]), placeOrder(gw, alice.auth, [{ productId: 'p-0002', quantity: 1 }])]);
  assert.equal(o1.status, 201, o1.text);
  assert.equal(o2.status, 201, o2.text);
  aliceOrder = o1.body.id;
  aliceOrderToCancel = o2.body.id;
  // A confirmed order is cancellable once its saga has finished (points awarded).
  await pollUntil('the sagas of alice’s orders completed', async () => {
    const rs = await Promise.all([aliceOrder, aliceOrderToCancel].map((id) => http(`${gw}/api/admin/sagas/${id}`, { headers: { authorization: `Bearer ${admin.token}` } })));
    return rs.every((r) => r.body?.status === 'COMPLETED');
  });
});
after(() => sys?.stop());

function claims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString());
}

// biome-ignore lint/suspicious/noExplicitAny: the routes answer JSON of many shapes
type Res = JsonResponse<any>;

type Who = 'no token' | 'bad token' | "another user's token" | 'own token' | 'admin';
const WHO: Who[] = ['no token', 'bad token', "another user's token", 'own token', 'admin'];

/** The caller's id, for routes that answer with the caller's own data. */
function idOf(who: Who): string {
  return who === 'admin' ? admin.id : who === 'own token' ? alice.id : bob.id;
}

function authOf(who: Who): Record<string, string> {
  switch (who) {
    case 'no token':
      return {};
    case 'bad token': {
      // alice's genuine token with the role changed to admin: the signature no longer matches.
      const [h, , s] = alice.token.split('.');
      const p = Buffer.from(JSON.stringify({ ...claims(alice.token), role: 'admin' })).toString('base64url');
      return { authorization: `Bearer ${h}.${p}.${s}` };
    }
    case "another user's token":
      return bob.auth;
    case 'own token':
      return alice.auth;
    case 'admin':
      return { authorization: `Bearer ${admin.token}` };
  }
}

/**
 * The documented rules (API.md): `none` anyone; `user` any signed-in user, answering with the
 * caller's own data; `owner` the owner (alice) or an admin, others 404; `self` that user or an
 * admin, others 403; `admin` role admin, others 403.
 */
type Rule = 'none' | 'user' | 'owner' | 'self' | 'admin';

interface RouteCase {
  /** As written in API.md (or the gateway's own extensions). */
  route: string;
  rule: Rule;
  /** The service whose answer a permitted caller gets (x-served-by), or 'gateway'. */
  service: string;
  ok: number;
  path: () => string;
  body?: (who: Who) => unknown;
  headers?: () => Record<string, string>;
  /** Extra checks on a permitted answer. */
  check?: (r: Res, who: Who) => void;
}

const mine = (field: string) => (r: Res, who: Who) => assert.equal(r.body[field], idOf(who), `the answer is the caller's own (${field})`);

const ROUTES: RouteCase[] = [
  {
    route: 'POST /api/auth/register',
    rule: 'none',
    service: 'user',
    ok: 201,
    path: () => '/api/auth/register',
    body: () => ({ email: `reg-${randomUUID()}@example.test`, password: 'long enough password', name: 'Reg' }),
  },
  { route: 'POST /api/auth/login', rule: 'none', service: 'user', ok: 200, path: () => '/api/auth/login', body: () => ({ email: alice.email, password: 'correct horse battery staple' }) },
  { route: 'GET /.well-known/jwks.json', rule: 'none', service: 'user', ok: 200, path: () => '/.well-known/jwks.json' },
  { route: 'GET /api/users/me', rule: 'user', service: 'user', ok: 200, path: () => '/api/users/me', check: mine('id') },
  { route: 'GET /api/products', rule: 'none', service: 'inventory', ok: 200, path: () => '/api/products?limit=2' },
  { route: 'GET /api/products/:id', rule: 'none', service: 'inventory', ok: 200, path: () => '/api/products/p-0003' },
  { route: 'GET /api/recommendations', rule: 'none', service: 'recommendation', ok: 200, path: () => '/api/recommendations?limit=3' },
  {
    route: 'POST /api/orders',
    rule: 'user',
    service: 'order',
    ok: 201,
    path: () => '/api/orders',
    body: () => ({ items: [{ productId: 'p-0004', quantity: 1 }] }),
    headers: () => ({ 'idempotency-key': randomUUID() }),
    check: mine('userId'),
  },
  { route: 'GET /api/orders/:id', rule: 'owner', service: 'order', ok: 200, path: () => `/api/orders/${aliceOrder}`, check: (r) => assert.equal(r.body.userId, alice.id) },
  {
    route: 'GET /api/orders',
    rule: 'user',
    service: 'order',
    ok: 200,
    path: () => '/api/orders',
    check: (r, who) => assert.ok((r.body.items as Array<{ userId: string }>).every((o) => o.userId === idOf(who)), 'only own orders are listed'),
  },
  {
    route: 'POST /api/orders/:id/cancel',
    rule: 'owner',
    service: 'order',
    ok: 200,
    path: () => `/api/orders/${aliceOrderToCancel}/cancel`,
    headers: () => ({ 'idempotency-key': randomUUID() }),
    check: (r) => assert.equal(r.body.status, 'CANCELLED'),
  },
  { route: 'GET /api/wallet', rule: 'user', service: 'payment', ok: 200, path: () => '/api/wallet', check: mine('userId') },
  { route: 'GET /api/points', rule: 'user', service: 'points', ok: 200, path: () => '/api/points', check: mine('userId') },
  {
    route: 'GET /api/user-dashboard/:userId',
    rule: 'self',
    service: 'gateway',
    ok: 200,
    path: () => `/api/user-dashboard/${alice.id}`,
    check: (r) => {
      assert.equal(r.body.user.id, alice.id);
      assert.deepEqual(r.body.degraded, []);
    },
  },
  {
    route: 'POST /api/admin/products',
    rule: 'admin',
    service: 'inventory',
    ok: 201,
    path: () => '/api/admin/products',
    body: () => ({ id: `auth-${randomBytes(4).toString('hex')}`, name: 'Auth test product', price: 100, stock: 1 }),
  },
  { route: 'POST /api/admin/products/:id/stock', rule: 'admin', service: 'inventory', ok: 200, path: () => '/api/admin/products/p-0005/stock', body: () => ({ quantity: 1 }) },
  { route: 'GET /api/admin/inventory', rule: 'admin', service: 'inventory', ok: 200, path: () => '/api/admin/inventory' },
  { route: 'GET /api/admin/payments/summary', rule: 'admin', service: 'payment', ok: 200, path: () => '/api/admin/payments/summary' },
  { route: 'GET /api/admin/orders/summary', rule: 'admin', service: 'order', ok: 200, path: () => '/api/admin/orders/summary' },
  { route: 'GET /api/admin/points/summary', rule: 'admin', service: 'points', ok: 200, path: () => '/api/admin/points/summary' },
  { route: 'GET /api/admin/users/summary', rule: 'admin', service: 'user', ok: 200, path: () => '/api/admin/users/summary' },
  { route: 'GET /api/admin/sagas', rule: 'admin', service: 'order', ok: 200, path: () => '/api/admin/sagas?limit=5' },
  { route: 'GET /api/admin/sagas/:id', rule: 'admin', service: 'order', ok: 200, path: () => `/api/admin/sagas/${aliceOrder}` },
  // A completed saga is not retried: 409 from the order service proves the admin got through.
  { route: 'POST /api/admin/sagas/:id/retry', rule: 'admin', service: 'order', ok: 409, path: () => `/api/admin/sagas/${aliceOrder}/retry` },
  { route: 'GET /api/gateway/breakers', rule: 'admin', service: 'gateway', ok: 200, path: () => '/api/gateway/breakers' },
];

/** What a caller gets on a route: a status and who answers it. */
function expected(c: RouteCase, who: Who): { status: number; by: string } {
  const permitted = { status: c.ok, by: c.service };
  if (c.rule === 'none') return permitted;
  if (who === 'no token' || who === 'bad token') return { status: 401, by: 'gateway' };
  switch (c.rule) {
    case 'user':
      return permitted;
    case 'owner':
      return who === "another user's token" ? { status: 404, by: c.service } : permitted;
    case 'self':
      return who === "another user's token" ? { status: 403, by: 'gateway' } : permitted;
    case 'admin':
      return who === 'admin' ? permitted : { status: 403, by: 'gateway' };
  }
}

async function call(c: RouteCase, who: Who): Promise<Res> {
  const method = c.route.split(' ')[0] as string;
  const body = c.body?.(who);
  return http(`${gw}${c.path()}`, { method, headers: { ...authOf(who), ...c.headers?.() }, ...(body === undefined ? {} : { json: body }) });
}

describe('every route × every kind of caller answers by its documented rule', () => {
  test('the table covers every route of API.md', () => {
    const apiMd = join(ROOT, '..', 'shared', 'API.md');
    if (!existsSync(apiMd)) return;
    const documented = [...readFileSync(apiMd, 'utf8').matchAll(/^\| (GET|POST|PUT|PATCH|DELETE) (\/api\/[^\s|]+)/gm)].map((m) => `${m[1]} ${m[2]}`);
    assert.ok(documented.length >= 20, `parsed ${documented.length} routes from API.md`);
    const covered = new Set(ROUTES.map((c) => c.route));
    assert.deepEqual(
      documented.filter((r) => !covered.has(r)),
      [],
    );
  });

  for (const c of ROUTES) {
    describe(c.route, () => {
      for (const who of WHO) {
        const want = expected(c, who);
        test(`${who} → ${want.status} from ${want.by}`, async () => {
          const r = await call(c, who);
          assert.equal(r.status, want.status, `${c.route} as ${who}: ${r.text.slice(0, 300)}`);
          assert.match(r.headers.get('x-served-by') ?? '', new RegExp(`^${want.by}@`), 'answered by the right process');
          assert.match(r.headers.get('x-request-id') ?? '', /^[A-Za-z0-9._:-]{1,128}$/);
          if (r.status >= 400) {
            assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
            assert.equal(r.body.status, r.status);
            assert.doesNotMatch(r.text, /\n\s+at /, 'no stack trace');
          }
          if (r.status === 401) assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
          if (r.status === want.status && want.status === c.ok) c.check?.(r, who);
        });
      }
    });
  }
});

describe('entry', () => {
  test('a valid client x-request-id is kept; an invalid one is replaced', async () => {
    const kept = await http(`${gw}/api/products/p-0001`, { headers: { 'x-request-id': 'client-req-42' } });
    assert.equal(kept.status, 200);
    assert.equal(kept.headers.get('x-request-id'), 'client-req-42');
    const replaced = await http(`${gw}/api/products/p-0001`, { headers: { 'x-request-id': 'bad id with spaces <script>' } });
    assert.match(replaced.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  });

  test('the client’s trace continues through the gateway; a request without one gets a new trace', async () => {
    const traceId = randomBytes(16).toString('hex');
    const r = await http(`${gw}/api/users/me`, { headers: { ...alice.auth, traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` } });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('traceparent') ?? '', new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    const fresh = await http(`${gw}/api/users/me`, { headers: alice.auth });
    assert.match(fresh.headers.get('traceparent') ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/);
    assert.doesNotMatch(fresh.headers.get('traceparent') ?? '', new RegExp(traceId));
  });

  test('internal x-concord-* headers from outside are dropped before anything reads them', async () => {
    // Inside the mesh this header carries the caller's remaining deadline; 0 would mean "already late".
    const r = await http(`${gw}/api/products/p-0001`, { headers: { 'x-concord-timeout-ms': '0', 'x-concord-source': 'user@v1#forged' } });
    assert.equal(r.status, 200, r.text);
    assert.match(r.headers.get('x-served-by') ?? '', /^inventory@/);
  });

  test('upstream answers carry x-served-by of the instance that produced them', async () => {
    const r = await http(`${gw}/api/wallet`, { headers: alice.auth });
    assert.match(r.headers.get('x-served-by') ?? '', /^payment@v1#payment-1$/);
  });
});

describe('JWT attacks are refused with 401 at the gateway', () => {
  /**
   * The user service's real signing key, from its data dir: the forgeries below are validly
   * signed (by hand, so that headers a JWT library would refuse to produce can be tested too).
   */
  function realKey(): { kid: string; sign: (header: Record<string, unknown>, payload: Record<string, unknown>) => string } {
    const file = JSON.parse(readFileSync(join(sys.dataDir, 'user', 'jwt-signing-key.json'), 'utf8')) as { kid: string; privateJwk: JsonWebKey };
    const key = createPrivateKey({ key: file.privateJwk, format: 'jwk' });
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    return {
      kid: file.kid,
      sign: (h, p) => {
        const input = `${b64(h)}.${b64(p)}`;
        return `${input}.${signBytes(null, Buffer.from(input), key).toString('base64url')}`;
      },
    };
  }

  test('a token signed by hand with the real key passes (the forgeries below differ only in what they name)', async () => {
    const k = realKey();
    const now = Math.floor(Date.now() / 1000);
    const token = k.sign({ alg: 'EdDSA', kid: k.kid }, { sub: alice.id, role: 'user', email: alice.email, iss: 'concord-user', aud: 'concord', iat: now, nbf: now, exp: now + 600 });
    const r = await http(`${gw}/api/users/me`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200, r.text);
  });

  async function assertRefused(token: string, what: string): Promise<void> {
    for (const path of ['/api/users/me', '/api/admin/inventory', `/api/user-dashboard/${alice.id}`]) {
      const r = await http(`${gw}${path}`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(r.status, 401, `${what} on ${path}: ${r.text.slice(0, 300)}`);
      assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.match(r.headers.get('x-served-by') ?? '', /^gateway@/, 'refused by the gateway, not by a service behind it');
      assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
    }
  }

  const cases: Array<[string, () => Promise<string>]> = [];
  const forged = async (name: string) => {
    const jwks = (await http(`${gw}/.well-known/jwks.json`)).body;
    return (await forgeries(alice.token, jwks))[name] as string;
  };
  for (const name of [
    'alg none',
    'alg None',
    'alg NONE',
    'alg nOnE',
    'HS256 keyed with the public key',
    'HS256 keyed with the raw public x',
    'embedded jwk',
    'embedded jwk without kid',
    'key not in the JWKS',
    'same kid, other key',
    'tampered payload (role admin)',
    'tampered signature',
    'stripped signature',
    'wrong audience',
    'garbage',
  ]) {
    cases.push([name, () => forged(name)]);
  }
  const genuine = (header: (kid: string) => Record<string, unknown>, payload: (now: number) => Record<string, unknown>) => async () => {
    const k = realKey();
    const now = Math.floor(Date.now() / 1000);
    return k.sign(header(k.kid), payload(now));
  };
  const base = (now: number) => ({ sub: alice.id, role: 'admin', email: alice.email, iss: 'concord-user', aud: 'concord', iat: now, nbf: now, exp: now + 600 });
  const ed = (kid: string) => ({ alg: 'EdDSA', kid });
  cases.push(['expired, signed with the real key', genuine(ed, (now) => ({ ...base(now), iat: now - 7200, nbf: now - 7200, exp: now - 3600 }))]);
  cases.push(['not valid yet (nbf in the future), signed with the real key', genuine(ed, (now) => ({ ...base(now), nbf: now + 3600 }))]);
  cases.push(['wrong issuer, signed with the real key', genuine(ed, (now) => ({ ...base(now), iss: 'someone-else' }))]);
  cases.push(['wrong audience, signed with the real key', genuine(ed, (now) => ({ ...base(now), aud: 'another-api' }))]);
  cases.push([
    'no expiry, signed with the real key',
    genuine(ed, (now) => {
      const { exp: _exp, ...rest } = base(now);
      return rest;
    }),
  ]);
  cases.push(['an unknown role, signed with the real key', genuine(ed, (now) => ({ ...base(now), role: 'superuser' }))]);
  cases.push(['a critical header the gateway does not understand, signed with the real key', genuine((kid) => ({ ...ed(kid), crit: ['x-demand'], 'x-demand': 1 }), base)]);
  cases.push(['a jku pointing elsewhere, signed with the real key', genuine((kid) => ({ ...ed(kid), jku: 'http://127.0.0.1:1/jwks.json' }), base)]);
  cases.push([
    'RS256 with an attacker RSA key under the real kid',
    async () => {
      const k = realKey();
      const rsa = await generateKeyPair('RS256');
      return new SignJWT(base(Math.floor(Date.now() / 1000))).setProtectedHeader({ alg: 'RS256', kid: k.kid }).sign(rsa.privateKey);
    },
  ]);
  cases.push(['an oversized token', async () => `${'a'.repeat(3000)}.${'b'.repeat(3000)}.${'c'.repeat(100)}`]);

  for (const [name, make] of cases) {
    test(`${name} → 401`, async () => {
      await assertRefused(await make(), name);
    });
  }

  test('malformed Authorization headers → 401', async () => {
    for (const value of [`Basic ${alice.token}`, `Bearer`, `Bearer  ${alice.token}x`, `Token ${alice.token}`, `Bearer ${alice.token} extra`, 'Bearer a.b']) {
      const r = await http(`${gw}/api/users/me`, { headers: { authorization: value } });
      assert.equal(r.status, 401, `${value.slice(0, 20)}: ${r.text}`);
      assert.match(r.headers.get('x-served-by') ?? '', /^gateway@/);
    }
  });

  test('the genuine tokens still work after the attacks', async () => {
    const r = await http(`${gw}/api/users/me`, { headers: alice.auth });
    assert.equal(r.status, 200);
    assert.equal(r.body.id, alice.id);
  });

  test('the JWKS is cached and refreshed on an unknown kid: after a key rotation, new tokens pass at once', async () => {
    // Rotate the user service's signing key: a new key file, then a restart picks it up.
    const file = join(sys.dataDir, 'user', 'jwt-signing-key.json');
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const kid = `rotated-${randomBytes(4).toString('hex')}`;
    const rotated = {
      kid,
      createdAt: new Date().toISOString(),
      privateJwk: { ...(await exportJWK(privateKey)), kid, alg: 'EdDSA', use: 'sig' },
      publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' },
    };
    writeFileSync(`${file}.next`, JSON.stringify(rotated), { mode: 0o600 });
    renameSync(`${file}.next`, file);
    const pid = sys.sup.signal('user-1', 'SIGKILL');
    await sys.sup.waitRestarted('user-1', pid, 15_000);
    const fresh = await pollUntil('a login with the rotated key', async () => {
      try {
        return await login(gw, alice.email, 'correct horse battery staple');
      } catch {
        return null;
      }
    }, 15_000, 100);
    const header = JSON.parse(Buffer.from(fresh.token.split('.')[0] as string, 'base64url').toString());
    assert.equal(header.kid, kid, 'the new token is signed with the rotated key');
    // The gateway has the old JWKS cached; the unknown kid makes it fetch the new one.
    const me = await http(`${gw}/api/users/me`, { headers: fresh.auth });
    assert.equal(me.status, 200, me.text);
    assert.equal(me.body.id, alice.id);
    const wallet = await http(`${gw}/api/wallet`, { headers: fresh.auth });
    assert.equal(wallet.status, 200, wallet.text);
  });
});
