/**
 * The points service on real processes: two points instances sharing one database, the user
 * service for tokens. Calls go straight to the instances.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ADMIN_ENV, type System, adminLogin, http, instances, newUser, pollUntil, serviceUrl, startSystem } from './harness.js';

const PROBLEM = /^application\/problem\+json/;

let sys: System;
let userUrl: string;
let admin: { authorization: string };
let seq = 0;

/** Every passing points instance, in id order (points-1, points-2). */
async function pointsUrls(count = 2): Promise<string[]> {
  const found = await pollUntil(`${count} passing points instances`, async () => {
    const all = (await instances(sys.controlUrl)).filter((i) => i.service === 'points' && i.status === 'passing');
    return all.length >= count ? all : null;
  });
  return found.sort((a, b) => a.id.localeCompare(b.id)).map((i) => `http://127.0.0.1:${i.port}`);
}

async function points(): Promise<string> {
  return serviceUrl(sys.controlUrl, 'points');
}

const uid = (what: string) => `${what}-${process.pid}-${++seq}`;

function post(url: string, json: unknown) {
  return http(url, { method: 'POST', json });
}

/** A response with a JSON body the test inspects freely. */
type Res = Awaited<ReturnType<typeof post>>;

function assertProblem(r: Res, status: number, slug: string): void {
  assert.equal(r.status, status, r.text);
  assert.match(r.headers.get('content-type') ?? '', PROBLEM);
  assert.equal(r.body.type, `https://concord.dev/problems/${slug}`, r.text);
}

async function totalPoints(base: string): Promise<number> {
  const r = await http(`${base}/api/admin/points/summary`, { headers: admin });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(Object.keys(r.body), ['totalPoints']);
  return r.body.totalPoints;
}

async function balance(base: string, userId: string): Promise<number> {
  const r = await http(`${base}/internal/points/${userId}`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.userId, userId);
  return r.body.points;
}

before(async () => {
  sys = await startSystem({
    name: 'points',
    topology: 'services:\n  - name: user\n  - name: points\n    instances: 2\n',
    env: { ...ADMIN_ENV, CONCORD_SCRYPT_COST: '12' },
  });
  userUrl = await serviceUrl(sys.controlUrl, 'user');
  admin = (await adminLogin(userUrl)).auth;
});
after(() => sys?.stop());

describe('awards and revokes', () => {
  test('an award applies once: 20 concurrent identical awards over both instances → one 201, nineteen 200 replays', async () => {
    const urls = await pointsUrls();
    const before = await totalPoints(urls[0]!);
    const userId = uid('u');
    const body = { key: `${uid('order')}:award-points`, userId, orderId: uid('order'), points: 123 };
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => post(`${urls[i % 2]}/internal/points/award`, body)));
    assert.deepEqual(results.map((r) => r.status).sort(), [...Array(19).fill(200), 201]);
    for (const r of results) assert.deepEqual(r.body, { key: body.key, userId, points: 123 });
    assert.equal(await balance(urls[1]!, userId), 123);
    assert.equal(await totalPoints(urls[1]!), before + 123);
  });

  test('revoking exactly what was awarded always succeeds and applies once, also when the revoke overtakes the award', async () => {
    const base = await points();
    const before = await totalPoints(base);
    const userId = uid('u');
    const orderId = uid('order');
    assert.equal((await post(`${base}/internal/points/award`, { key: `${orderId}:award`, userId, orderId, points: 40 })).status, 201);
    const revoke = { key: `${orderId}:revoke`, userId, orderId, points: 40 };
    const first = await post(`${base}/internal/points/revoke`, revoke);
    assert.equal(first.status, 201, first.text);
    assert.deepEqual(first.body, { key: revoke.key, userId, points: 0 });
    const replay = await post(`${base}/internal/points/revoke`, revoke);
    assert.equal(replay.status, 200);
    assert.deepEqual(replay.body, first.body);

    // Reordered delivery: the revoke of another order comes first; the balance dips, then evens out.
    const late = uid('order');
    const early = await post(`${base}/internal/points/revoke`, { key: `${late}:revoke`, userId, orderId: late, points: 15 });
    assert.equal(early.status, 201, early.text);
    assert.equal(early.body.points, -15);
    await post(`${base}/internal/points/award`, { key: `${late}:award`, userId, orderId: late, points: 15 });
    assert.equal(await balance(base, userId), 0);
    assert.equal(await totalPoints(base), before);
  });

  test('a key reused with other parameters → 409 key-mismatch naming the fields; nothing changes', async () => {
    const base = await points();
    const userId = uid('u');
    const body = { key: uid('k'), userId, orderId: uid('o'), points: 10 };
    assert.equal((await post(`${base}/internal/points/award`, body)).status, 201);
    const before = await totalPoints(base);
    const other = await post(`${base}/internal/points/award`, { ...body, points: 11 });
    assertProblem(other, 409, 'key-mismatch');
    assert.deepEqual(other.body.fields, ['points']);
    const asRevoke = await post(`${base}/internal/points/revoke`, body);
    assertProblem(asRevoke, 409, 'key-mismatch');
    assert.deepEqual(asRevoke.body.fields, ['kind', 'points']);
    assert.equal(await balance(base, userId), 10);
    assert.equal(await totalPoints(base), before);
  });

  test('the summary totals every balance; unknown users have 0 points', async () => {
    const urls = await pointsUrls();
    const before = await totalPoints(urls[0]!);
    const users = [uid('u'), uid('u'), uid('u')];
    let expected = 0;
    await Promise.all(
      users.flatMap((userId, i) =>
        Array.from({ length: 5 }, async (_, k) => {
          const orderId = uid('o');
          const pts = 10 * (i + 1) + k;
          const base = urls[(i + k) % 2]!;
          assert.equal((await post(`${base}/internal/points/award`, { key: `${orderId}:award`, userId, orderId, points: pts })).status, 201);
          expected += pts;
          if (k === 0) {
            assert.equal((await post(`${base}/internal/points/revoke`, { key: `${orderId}:revoke`, userId, orderId, points: pts })).status, 201);
            expected -= pts;
          }
        }),
      ),
    );
    assert.equal(await totalPoints(urls[1]!), before + expected);
    assert.equal(await balance(urls[0]!, users[0]!), 11 + 12 + 13 + 14);
    assert.equal(await balance(urls[0]!, uid('nobody')), 0);
  });
});

describe('users, bad input and access', () => {
  test('GET /api/points answers the caller their own balance (0 before any award)', async () => {
    const base = await points();
    const u = await newUser(userUrl, 'collector');
    const none = await http(`${base}/api/points`, { headers: u.auth });
    assert.equal(none.status, 200, none.text);
    assert.deepEqual(none.body, { userId: u.id, points: 0 });
    const orderId = uid('o');
    await post(`${base}/internal/points/award`, { key: `${orderId}:award`, userId: u.id, orderId, points: 77 });
    assert.deepEqual((await http(`${base}/api/points`, { headers: u.auth })).body, { userId: u.id, points: 77 });
  });

  test('bad award and revoke bodies answer 400 problem+json naming the field, and write nothing', async () => {
    const base = await points();
    const before = await totalPoints(base);
    const userId = uid('u');
    const ok = { key: uid('k'), userId, orderId: uid('o'), points: 5 };
    const cases: Array<[unknown, string]> = [
      [{ ...ok, points: -1 }, '/body/points'],
      [{ ...ok, points: 1.5 }, '/body/points'],
      [{ ...ok, points: 1_000_000_001 }, '/body/points'],
      [{ ...ok, points: '5' }, '/body/points'],
      [{ key: ok.key, userId, orderId: ok.orderId }, '/body/points'],
      [{ userId, orderId: ok.orderId, points: 5 }, '/body/key'],
      [{ ...ok, bonus: true }, '/body/bonus'],
      [{ ...ok, key: 'no spaces' }, '/body/key'],
      [{ ...ok, userId: '' }, '/body/userId'],
      [{ ...ok, orderId: 'x'.repeat(129) }, '/body/orderId'],
    ];
    for (const path of ['/internal/points/award', '/internal/points/revoke']) {
      for (const [body, field] of cases) {
        const r = await post(`${base}${path}`, body);
        assertProblem(r, 400, 'validation');
        assert.equal(r.body.errors[0].path, field, `${path} ${JSON.stringify(body).slice(0, 80)} → ${r.text}`);
      }
      const malformed = await http(`${base}${path}`, { method: 'POST', body: '{"key": "k", "points": ', headers: { 'content-type': 'application/json' } });
      assertProblem(malformed, 400, 'malformed-json');
      assert.equal(malformed.body.errors[0].path, '/body');
    }
    assertProblem(await http(`${base}/internal/points/${encodeURIComponent('a b')}`), 400, 'validation');
    assert.equal(await totalPoints(base), before, 'nothing was written');
    assert.equal(await balance(base, userId), 0);
    // And the key is still free: the first valid request with it applies.
    assert.equal((await post(`${base}/internal/points/award`, ok)).status, 201);
  });

  test('/api/points needs a token (401); the points summary needs the admin role (403)', async () => {
    const base = await points();
    const u = await newUser(userUrl, 'nosy');
    const none = await http(`${base}/api/points`);
    assertProblem(none, 401, 'unauthorized');
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
    assertProblem(await http(`${base}/api/points`, { headers: { authorization: 'Bearer not.a.token' } }), 401, 'unauthorized');
    assertProblem(await http(`${base}/api/admin/points/summary`), 401, 'unauthorized');
    assertProblem(await http(`${base}/api/admin/points/summary`, { headers: u.auth }), 403, 'forbidden');
    assert.equal(typeof (await totalPoints(base)), 'number');
  });
});
