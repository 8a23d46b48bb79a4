/**
 * The payment service on real processes: two payment instances sharing one database, the user
 * service for tokens and wallet creation at registration. Calls go straight to the instances.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { collectStatus } from '@concord/cli';
import { ADMIN_ENV, type System, type TestUser, adminLogin, http, instances, newUser, pollUntil, serviceUrl, startSystem } from './harness.js';

const INITIAL = 1_000_000;
const PROBLEM = /^application\/problem\+json/;

let sys: System;
let userUrl: string;
let admin: { authorization: string };
let seq = 0;

/** Every passing payment instance, in id order (payment-1, payment-2). */
async function paymentUrls(count = 2): Promise<string[]> {
  const found = await pollUntil(`${count} passing payment instances`, async () => {
    const all = (await instances(sys.controlUrl)).filter((i) => i.service === 'payment' && i.status === 'passing');
    return all.length >= count ? all : null;
  });
  return found.sort((a, b) => a.id.localeCompare(b.id)).map((i) => `http://127.0.0.1:${i.port}`);
}

/** One payment instance (any). */
async function payment(): Promise<string> {
  return serviceUrl(sys.controlUrl, 'payment');
}

const uid = (what: string) => `${what}-${process.pid}-${++seq}`;

/** A response with a JSON body the test inspects freely. */
type Res = Awaited<ReturnType<typeof post>>;

function post(url: string, json: unknown) {
  return http(url, { method: 'POST', json });
}

function assertProblem(r: Res, status: number, slug: string): void {
  assert.equal(r.status, status, r.text);
  assert.match(r.headers.get('content-type') ?? '', PROBLEM);
  assert.equal(r.body.type, `https://concord.dev/problems/${slug}`, r.text);
}

async function summary(base: string): Promise<{ wallets: { count: number; totalBalance: number; totalDeposited: number }; charged: number; refunded: number }> {
  const r = await http(`${base}/api/admin/payments/summary`, { headers: admin });
  assert.equal(r.status, 200, r.text);
  return r.body;
}

function assertConserved(s: Awaited<ReturnType<typeof summary>>): void {
  assert.equal(s.wallets.totalDeposited, s.wallets.totalBalance + s.charged - s.refunded, `money not conserved: ${JSON.stringify(s)}`);
}

/** A registered user whose wallet the user service's outbox has already delivered. */
async function registeredUser(): Promise<TestUser> {
  const u = await newUser(userUrl, 'payer');
  const base = await payment();
  await pollUntil(`the wallet of ${u.id}`, async () => (await http(`${base}/internal/wallets/${u.id}`)).status === 200);
  return u;
}

before(async () => {
  sys = await startSystem({
    name: 'payment',
    topology: 'services:\n  - name: user\n  - name: payment\n    instances: 2\n',
    env: { ...ADMIN_ENV, CONCORD_SCRYPT_COST: '12', CONCORD_TEST_FAULTS: '1' },
  });
  userUrl = await serviceUrl(sys.controlUrl, 'user');
  admin = (await adminLogin(userUrl)).auth;
  // The seeded admin's wallet arrives through the outbox too; wait for it so totals stay still.
  const me = await http(`${userUrl}/api/users/me`, { headers: admin });
  const base = await payment();
  await pollUntil('the admin wallet', async () => (await http(`${base}/internal/wallets/${me.body.id}`)).status === 200);
});
after(() => sys?.stop());

describe('wallets', () => {
  test('registration gives the user one wallet of 10000.00 (through the user outbox); GET /api/wallet shows it', async () => {
    const u = await registeredUser();
    const [a, b] = await paymentUrls();
    assert.deepEqual((await http(`${a}/internal/wallets/${u.id}`)).body, { userId: u.id, balance: INITIAL });
    const mine = await http(`${b}/api/wallet`, { headers: u.auth });
    assert.equal(mine.status, 200);
    assert.deepEqual(mine.body, { userId: u.id, balance: INITIAL });
    assert.match(mine.headers.get('x-served-by') ?? '', /^payment@v1#payment-2$/);
    const again = await post(`${a}/internal/wallets`, { userId: u.id });
    assert.equal(again.status, 200, 'an existing wallet is not created again');
    assert.deepEqual(again.body, { userId: u.id, balance: INITIAL });
  });

  test('20 concurrent POST /internal/wallets for one user, over both instances, create exactly one wallet', async () => {
    const urls = await paymentUrls();
    const before = await summary(urls[0]!);
    const userId = uid('wallet-race');
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => post(`${urls[i % 2]}/internal/wallets`, { userId })));
    assert.deepEqual(results.map((r) => r.status).sort(), [...Array(19).fill(200), 201]);
    for (const r of results) assert.deepEqual(r.body, { userId, balance: INITIAL });
    const after = await summary(urls[1]!);
    assert.equal(after.wallets.count, before.wallets.count + 1);
    assert.equal(after.wallets.totalDeposited, before.wallets.totalDeposited + INITIAL);
  });

  test('a wallet exists at first sight, whichever comes first: the registration outbox, GET /api/wallet or a charge', async () => {
    const base = await payment();
    // Racing the outbox: the GET may come before its delivery, and then creates the wallet itself.
    const u = await newUser(userUrl, 'racer');
    const first = await http(`${base}/api/wallet`, { headers: u.auth });
    assert.equal(first.status, 200, first.text);
    assert.deepEqual(first.body, { userId: u.id, balance: INITIAL });
    // A user id payment has never seen: unknown to the internal read, created by a charge.
    const userId = uid('lazy');
    assertProblem(await http(`${base}/internal/wallets/${userId}`), 404, 'not-found');
    const charge = await post(`${base}/internal/charges`, { chargeId: uid('c'), userId, orderId: uid('o'), amount: 100 });
    assert.equal(charge.status, 201, charge.text);
    assert.equal(charge.body.balance, INITIAL - 100, 'the charge created the wallet with 10000.00 first');
    assert.deepEqual((await http(`${base}/internal/wallets/${userId}`)).body, { userId, balance: INITIAL - 100 });
    const late = await post(`${base}/internal/wallets`, { userId });
    assert.equal(late.status, 200, 'a late creation request finds the wallet and adds nothing');
    assert.deepEqual(late.body, { userId, balance: INITIAL - 100 });
  });
});

describe('charges and refunds', () => {
  test('a charge debits once: 20 concurrent identical charges over both instances → one 201, nineteen 200 replays', async () => {
    const u = await registeredUser();
    const urls = await paymentUrls();
    const body = { chargeId: uid('charge'), userId: u.id, orderId: uid('order'), amount: 12_345 };
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => post(`${urls[i % 2]}/internal/charges`, body)));
    assert.deepEqual(results.map((r) => r.status).sort(), [...Array(19).fill(200), 201]);
    const expected = { chargeId: body.chargeId, status: 'CHARGED', amount: 12_345, refunded: 0, balance: INITIAL - 12_345 };
    for (const r of results) assert.deepEqual(r.body, expected);
    assert.deepEqual((await http(`${urls[0]}/api/wallet`, { headers: u.auth })).body, { userId: u.id, balance: INITIAL - 12_345 });
    const stored = await http(`${urls[1]}/internal/charges/${body.chargeId}`);
    assert.equal(stored.status, 200);
    assert.deepEqual(
      { ...stored.body, createdAt: typeof stored.body.createdAt },
      {
        chargeId: body.chargeId,
        userId: u.id,
        orderId: body.orderId,
        status: 'CHARGED',
        amount: 12_345,
        refunded: 0,
        createdAt: 'string',
      },
    );
    assertProblem(await http(`${urls[1]}/internal/charges/${uid('unknown')}`), 404, 'not-found');
  });

  test('insufficient funds is refused with 409, the balance and the amount, and writes nothing', async () => {
    const u = await registeredUser();
    const base = await payment();
    const before = await summary(base);
    const chargeId = uid('too-much');
    const r = await post(`${base}/internal/charges`, { chargeId, userId: u.id, orderId: uid('o'), amount: INITIAL + 1 });
    assertProblem(r, 409, 'insufficient-funds');
    assert.equal(r.body.balance, INITIAL);
    assert.equal(r.body.amount, INITIAL + 1);
    assert.deepEqual(await summary(base), before);
    assert.equal((await http(`${base}/internal/charges/${chargeId}`)).status, 404);
    // The whole balance can be spent, to the cent.
    const all = await post(`${base}/internal/charges`, { chargeId, userId: u.id, orderId: uid('o'), amount: INITIAL });
    assert.equal(all.status, 201, 'a refused charge id stays free for a later attempt');
    assert.equal(all.body.balance, 0);
  });

  test('the same charge id with other parameters → 409 charge-mismatch, nothing changes', async () => {
    const u = await registeredUser();
    const base = await payment();
    const body = { chargeId: uid('c'), userId: u.id, orderId: uid('o'), amount: 500 };
    assert.equal((await post(`${base}/internal/charges`, body)).status, 201);
    const before = await summary(base);
    const r = await post(`${base}/internal/charges`, { ...body, amount: 600 });
    assertProblem(r, 409, 'charge-mismatch');
    assert.deepEqual(r.body.fields, ['amount']);
    assert.deepEqual(await summary(base), before);
  });

  test('refunds: a partial refund applies once (also 10 concurrent replays), never above the charge, the rest by default', async () => {
    const u = await registeredUser();
    const urls = await paymentUrls();
    const chargeId = uid('c');
    assert.equal((await post(`${urls[0]}/internal/charges`, { chargeId, userId: u.id, orderId: uid('o'), amount: 5000 })).status, 201);
    const refundUrl = (i: number) => `${urls[i % 2]}/internal/charges/${chargeId}/refund`;

    const partial = await Promise.all(Array.from({ length: 10 }, (_, i) => post(refundUrl(i), { refundId: `${chargeId}:r1`, amount: 2000 })));
    for (const r of partial) {
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body, { chargeId, status: 'CHARGED', amount: 5000, refunded: 2000, balance: INITIAL - 3000 });
    }
    const over = await post(refundUrl(0), { refundId: `${chargeId}:r2`, amount: 3001 });
    assertProblem(over, 409, 'refund-exceeds-charge');
    assert.equal(over.body.refundable, 3000);

    const rest = await post(refundUrl(1), { refundId: `${chargeId}:r3` });
    assert.deepEqual(rest.body, { chargeId, status: 'CHARGED', amount: 5000, refunded: 5000, balance: INITIAL });
    const nothingLeft = await post(refundUrl(0), { refundId: `${chargeId}:r4` });
    assert.equal(nothingLeft.status, 200, 'a refund of nothing is a no-op, not an error');
    assert.equal(nothingLeft.body.refunded, 5000);
    assertProblem(await post(refundUrl(1), { refundId: `${chargeId}:r4`, amount: 1 }), 409, 'key-mismatch');
    assertProblem(await post(refundUrl(1), { refundId: `${chargeId}:r5`, amount: 1 }), 409, 'refund-exceeds-charge');
    assert.deepEqual((await http(`${urls[1]}/api/wallet`, { headers: u.auth })).body, { userId: u.id, balance: INITIAL });
  });

  test('a refund before its charge leaves a VOID tombstone: 200 with refunded 0, and the late charge is refused', async () => {
    const u = await registeredUser();
    const base = await payment();
    const chargeId = uid('early');
    const early = await post(`${base}/internal/charges/${chargeId}/refund`, { refundId: `${chargeId}:undo` });
    assert.equal(early.status, 200, early.text);
    assert.deepEqual(early.body, { chargeId, status: 'VOID', amount: 0, refunded: 0, balance: null });
    const before = await summary(base);
    const late = await post(`${base}/internal/charges`, { chargeId, userId: u.id, orderId: uid('o'), amount: 700 });
    assertProblem(late, 409, 'charge-voided');
    assert.deepEqual(await summary(base), before);
    assert.deepEqual((await http(`${base}/api/wallet`, { headers: u.auth })).body.balance, INITIAL);
    const replay = await post(`${base}/internal/charges/${chargeId}/refund`, { refundId: `${chargeId}:undo` });
    assert.deepEqual(replay.body, early.body);
  });

  test('a charge survives kill -9 right after its commit, and is lost entirely by kill -9 right before it: either way the retry applies it once', async () => {
    const u = await registeredUser();
    for (const point of ['payment:charge:after-commit', 'payment:charge:before-commit']) {
      const [victimUrl, otherUrl] = await paymentUrls();
      const pid = (await collectStatus(sys.controlUrl)).find((r) => r.id === 'payment-1')?.pid;
      assert.ok(pid);
      const armed = await post(`${victimUrl}/internal/test/faults`, { crash: [point] });
      assert.equal(armed.status, 200, armed.text);
      const body = { chargeId: uid('crash'), userId: u.id, orderId: uid('o'), amount: 1000 };
      const before = (await http(`${otherUrl}/internal/wallets/${u.id}`)).body.balance;
      await assert.rejects(post(`${victimUrl}/internal/charges`, body), 'the instance died mid-request');
      const retry = await post(`${otherUrl}/internal/charges`, body);
      assert.equal(retry.status, point.startsWith('payment:charge:after') ? 200 : 201, `${point}: ${retry.text}`);
      assert.equal(retry.body.balance, before - 1000, `${point}: debited exactly once`);
      await sys.sup.waitRestarted('payment-1', pid, 15_000);
      await sys.sup.waitPassing(['payment-1'], 15_000);
    }
    assertConserved(await summary(await payment()));
  });

  test('money is conserved after a mixed concurrent workload over both instances', async () => {
    const urls = await paymentUrls();
    const before = await summary(urls[0]!);
    assertConserved(before);
    const users = await Promise.all(Array.from({ length: 4 }, () => registeredUser()));
    let charged = 0;
    let refunded = 0;
    const work: Promise<void>[] = [];
    users.forEach((u, i) => {
      for (let k = 0; k < 6; k++) {
        const base = urls[(i + k) % 2]!;
        const chargeId = uid('mix');
        const amount = 1000 * (k + 1) + i;
        work.push(
          (async () => {
            const c = await post(`${base}/internal/charges`, { chargeId, userId: u.id, orderId: chargeId, amount });
            assert.equal(c.status, 201, c.text);
            charged += amount;
            if (k % 2 === 0) {
              const r = await post(`${urls[(i + k + 1) % 2]}/internal/charges/${chargeId}/refund`, { refundId: `${chargeId}:r`, amount: k * 100 });
              assert.equal(r.status, 200, r.text);
              refunded += k * 100;
            }
            if (k === 5) {
              const r = await post(`${base}/internal/charges/${chargeId}/refund`, { refundId: `${chargeId}:all` });
              assert.equal(r.status, 200, r.text);
              refunded += amount;
            }
          })(),
        );
      }
      work.push(
        (async () => {
          const r = await post(`${urls[i % 2]}/internal/charges`, { chargeId: uid('huge'), userId: u.id, orderId: uid('o'), amount: 2 * INITIAL });
          assertProblem(r, 409, 'insufficient-funds');
        })(),
      );
      work.push(
        (async () => {
          const r = await post(`${urls[(i + 1) % 2]}/internal/charges/${uid('never')}/refund`, { refundId: uid('r') });
          assert.equal(r.status, 200, r.text);
        })(),
      );
    });
    await Promise.all(work);
    const after = await summary(urls[1]!);
    assertConserved(after);
    assert.equal(after.charged - before.charged, charged);
    assert.equal(after.refunded - before.refunded, refunded);
    assert.equal(after.wallets.count - before.wallets.count, users.length);
  });
});

describe('bad input and access', () => {
  test('bad charge, refund and wallet bodies answer 400 problem+json naming the field, and write nothing', async () => {
    const base = await payment();
    const before = await summary(base);
    const ok = { chargeId: uid('bad'), userId: uid('u'), orderId: uid('o'), amount: 100 };
    const charges: Array<[unknown, string]> = [
      [{ ...ok, amount: -1 }, '/body/amount'],
      [{ ...ok, amount: 0 }, '/body/amount'],
      [{ ...ok, amount: 1.5 }, '/body/amount'],
      [{ ...ok, amount: 1_000_000_000_001 }, '/body/amount'],
      [{ ...ok, amount: 1e300 }, '/body/amount'],
      [{ ...ok, amount: '100' }, '/body/amount'],
      [{ ...ok, amount: null }, '/body/amount'],
      [{ chargeId: ok.chargeId, userId: ok.userId, orderId: ok.orderId }, '/body/amount'],
      [{ ...ok, currency: 'EUR' }, '/body/currency'],
      [{ ...ok, chargeId: 'has spaces' }, '/body/chargeId'],
      [{ ...ok, userId: '' }, '/body/userId'],
      [{ ...ok, orderId: 'x'.repeat(129) }, '/body/orderId'],
      [[ok], '/body'],
    ];
    for (const [body, path] of charges) {
      const r = await post(`${base}/internal/charges`, body);
      assertProblem(r, 400, 'validation');
      assert.equal(r.body.errors[0].path, path, `${JSON.stringify(body).slice(0, 80)} → ${r.text}`);
    }
    const malformed = await http(`${base}/internal/charges`, {
      method: 'POST',
      body: '{"chargeId": "x", "amount": 1',
      headers: { 'content-type': 'application/json' },
    });
    assertProblem(malformed, 400, 'malformed-json');
    assert.equal(malformed.body.errors[0].path, '/body');

    const refunds: Array<[unknown, string]> = [
      [{ refundId: 'r', amount: -5 }, '/body/amount'],
      [{ refundId: 'r', amount: 2.5 }, '/body/amount'],
      [{ refundId: 'r', amount: '5' }, '/body/amount'],
      [{ amount: 5 }, '/body/refundId'],
      [{ refundId: 'r', reason: 'x' }, '/body/reason'],
    ];
    for (const [body, path] of refunds) {
      const r = await post(`${base}/internal/charges/${ok.chargeId}/refund`, body);
      assertProblem(r, 400, 'validation');
      assert.equal(r.body.errors[0].path, path, r.text);
    }
    const badId = await post(`${base}/internal/charges/${encodeURIComponent('a b')}/refund`, { refundId: 'r' });
    assertProblem(badId, 400, 'validation');
    assert.equal(badId.body.errors[0].path, '/params/id');

    const wallets: Array<[unknown, string]> = [
      [{}, '/body/userId'],
      [{ userId: 5 }, '/body/userId'],
      [{ userId: 'u', balance: 10 }, '/body/balance'],
    ];
    for (const [body, path] of wallets) {
      const r = await post(`${base}/internal/wallets`, body);
      assertProblem(r, 400, 'validation');
      assert.equal(r.body.errors[0].path, path, r.text);
    }
    assert.deepEqual(await summary(base), before, 'nothing was written');
    assert.equal((await http(`${base}/internal/charges/${ok.chargeId}`)).status, 404, 'not even a tombstone');
  });

  test('/api/wallet needs a token (401); the payments summary needs the admin role (403)', async () => {
    const base = await payment();
    const u = await registeredUser();
    const none = await http(`${base}/api/wallet`);
    assertProblem(none, 401, 'unauthorized');
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
    assertProblem(await http(`${base}/api/wallet`, { headers: { authorization: 'Bearer not.a.token' } }), 401, 'unauthorized');
    assertProblem(await http(`${base}/api/admin/payments/summary`), 401, 'unauthorized');
    assertProblem(await http(`${base}/api/admin/payments/summary`, { headers: u.auth }), 403, 'forbidden');
    const s = await http(`${base}/api/admin/payments/summary`, { headers: admin });
    assert.equal(s.status, 200);
    assert.deepEqual(Object.keys(s.body).sort(), ['charged', 'refunded', 'wallets']);
    assert.deepEqual(Object.keys(s.body.wallets).sort(), ['count', 'totalBalance', 'totalDeposited']);
    assertConserved(s.body);
  });
});
