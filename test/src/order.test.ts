/**
 * The order system end to end through the gateway, on real processes: the saga's happy and
 * failing paths, crashes at every step boundary, idempotency keys, cancellation, concurrency,
 * bad input — each followed by the invariant audit.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { runAudit } from '@concord/cli';
import { ADMIN_ENV, adminLogin, http, newUser, ONE_OF_EACH, pollUntil, serviceUrl, startSystem, type System, type TestUser } from './harness.js';
import { balanceOf, createProduct, inventoryOf, placeOrder, pointsOf, terminalOrder } from './order-helpers.js';


let sys: System;
let gw: string;
let admin: Record<string, string>;
let adminToken: string;

before(async () => {
  sys = await startSystem({
    name: 'order',
    topology: ONE_OF_EACH,
    env: {
      ...ADMIN_ENV,
      CONCORD_SEED_PRODUCTS: '20',
      CONCORD_TEST_FAULTS: '1',
      CONCORD_SCRYPT_COST: '10',
      CONCORD_CHECK_INTERVAL: '300ms',
      CONCORD_CHECK_TIMEOUT: '1s',
      CONCORD_RATE_LIMIT_PER_USER: '0',
      CONCORD_RATE_LIMIT_PER_IP: '0',
      CONCORD_SAGA_STEP_TIMEOUT: '3s',
      CONCORD_SAGA_BACKOFF_CAP: '200ms',
      CONCORD_SAGA_MAX_COMPENSATION_ATTEMPTS: '8',
      CONCORD_SAGA_LEASE: '3s',
    },
  });
  gw = sys.gatewayUrl as string;
  const a = await adminLogin(gw);
  admin = a.auth;
  adminToken = a.token;
});
after(() => sys?.stop());

async function auditPasses(): Promise<void> {
  const { ok, results } = await runAudit({ gatewayUrl: gw, token: adminToken, quietTimeoutMs: 30_000 });
  assert.ok(ok, results.filter((r) => !r.ok).map((r) => `${r.name}: ${r.detail}`).join('\n'));
}

describe('the order saga', () => {
  test('happy path: an order of 3 products ends CONFIRMED; stock, wallet and points move exactly once', async () => {
    const u = await newUser(gw);
    const before = await Promise.all(['p-0001', 'p-0002', 'p-0003'].map((p) => inventoryOf(gw, admin, p)));
    const balance0 = await balanceOf(gw, u.auth);
    assert.equal(balance0, 1_000_000);
    const items = [
      { productId: 'p-0001', quantity: 2 },
      { productId: 'p-0002', quantity: 1 },
      { productId: 'p-0003', quantity: 3 },
    ];
    const r = await placeOrder(gw, u.auth, items);
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.status, 'CONFIRMED');
    assert.equal(r.body.userId, u.id);
    assert.match(r.headers.get('x-served-by') ?? '', /^order@v1#order-1$/);
    const total = r.body.items.reduce((s: number, i: { price: number; quantity: number }) => s + i.price * i.quantity, 0);
    assert.equal(r.body.total, total);
    const after = await Promise.all(['p-0001', 'p-0002', 'p-0003'].map((p) => inventoryOf(gw, admin, p)));
    items.forEach((it, i) => {
      assert.equal(after[i]!.sold - before[i]!.sold, it.quantity);
      assert.equal(after[i]!.available - before[i]!.available, -it.quantity);
      assert.equal(after[i]!.reserved, before[i]!.reserved);
    });
    assert.equal(await balanceOf(gw, u.auth), balance0 - total);
    await pollUntil('points awarded', async () => (await pointsOf(gw, u.auth)) === Math.floor(total / 100));
    // Replaying the same key does not move anything again.
    const list = await http(`${gw}/api/orders`, { headers: u.auth });
    assert.equal(list.body.items.length, 1);
  });

  test('not enough stock → FAILED, wallet untouched, nothing reserved', async () => {
    const u = await newUser(gw);
    await createProduct(gw, admin, { id: `scarce-${randomUUID().slice(0, 8)}`, price: 500, stock: 1 }).then(async (p) => {
      const r = await placeOrder(gw, u.auth, [{ productId: p.id, quantity: 2 }]);
      assert.equal(r.status, 201);
      assert.equal(r.body.status, 'FAILED');
      assert.match(r.body.reason, /insufficient-stock/);
      assert.equal(await balanceOf(gw, u.auth), 1_000_000);
      const inv = await inventoryOf(gw, admin, p.id);
      assert.deepEqual([inv.available, inv.reserved, inv.sold], [1, 0, 0]);
    });
  });

  test('not enough funds → FAILED, stock back to available, wallet untouched', async () => {
    const u = await newUser(gw);
    const p = await createProduct(gw, admin, { id: `pricey-${randomUUID().slice(0, 8)}`, price: 1_000_001, stock: 5 });
    const r = await placeOrder(gw, u.auth, [{ productId: p.id, quantity: 1 }]);
    assert.equal(r.body.status, 'FAILED');
    assert.match(r.body.reason, /insufficient-funds/);
    const inv = await inventoryOf(gw, admin, p.id);
    assert.deepEqual([inv.available, inv.reserved, inv.sold], [5, 0, 0]);
    assert.equal(await balanceOf(gw, u.auth), 1_000_000);
  });

  test('Prefer: wait=0 answers 202 with Location at once; the order completes in the background', async () => {
    const u = await newUser(gw);
    const r = await placeOrder(gw, u.auth, [{ productId: 'p-0004', quantity: 1 }], { waitS: 0 });
    assert.equal(r.status, 202);
    assert.equal(r.body.status, 'PENDING');
    assert.equal(r.headers.get('location'), `/api/orders/${r.body.id}`);
    assert.equal(r.headers.get('preference-applied'), 'wait=0');
    assert.equal((await terminalOrder(gw, u.auth, r.body.id)).status, 'CONFIRMED');
  });
});

describe('idempotency keys', () => {
  test('same key and body → the same order, applied once; a different body → 422', async () => {
    const u = await newUser(gw);
    const key = randomUUID();
    const items = [{ productId: 'p-0005', quantity: 1 }];
    const first = await placeOrder(gw, u.auth, items, { key });
    const again = await placeOrder(gw, u.auth, items, { key });
    assert.equal(again.status, 201);
    assert.equal(again.body.id, first.body.id);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    const other = await placeOrder(gw, u.auth, [{ productId: 'p-0005', quantity: 2 }], { key });
    assert.equal(other.status, 422);
    assert.equal((await http(`${gw}/api/orders`, { headers: u.auth })).body.items.length, 1);
    // Keys are per user: another user's identical key is independent.
    const v = await newUser(gw);
    const theirs = await placeOrder(gw, v.auth, items, { key });
    assert.notEqual(theirs.body.id, first.body.id);
  });

  test('concurrent requests with one key create one order; the others get it or 409', async () => {
    const u = await newUser(gw);
    const key = randomUUID();
    const rs = await Promise.all(Array.from({ length: 10 }, () => placeOrder(gw, u.auth, [{ productId: 'p-0006', quantity: 1 }], { key, waitS: 2 })));
    const ids = new Set(rs.filter((r) => r.status === 201 || r.status === 202).map((r) => r.body.id));
    assert.equal(ids.size, 1, rs.map((r) => r.status).join(','));
    for (const r of rs) assert.ok([201, 202, 409].includes(r.status), String(r.status));
    assert.equal((await http(`${gw}/api/orders`, { headers: u.auth })).body.items.length, 1);
  });

  test('a missing or malformed Idempotency-Key is 400 naming the header, and nothing is written', async () => {
    const u = await newUser(gw);
    const missing = await http(`${gw}/api/orders`, { method: 'POST', json: { items: [{ productId: 'p-0001', quantity: 1 }] }, headers: u.auth });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.errors[0].path, '/headers/idempotency-key');
    const bad = await placeOrder(gw, u.auth, [{ productId: 'p-0001', quantity: 1 }], { key: 'has spaces in it' });
    assert.equal(bad.status, 400);
    assert.equal((await http(`${gw}/api/orders`, { headers: u.auth })).body.items.length, 0);
  });
});

describe('cancellation', () => {
  test('cancel of a confirmed order refunds, restocks and revokes points exactly once, also when repeated', async () => {
    const u = await newUser(gw);
    const inv0 = await inventoryOf(gw, admin, 'p-0007');
    const r = await placeOrder(gw, u.auth, [{ productId: 'p-0007', quantity: 4 }]);
    assert.equal(r.body.status, 'CONFIRMED');
    await pollUntil('points awarded', async () => (await pointsOf(gw, u.auth)) === Math.floor(r.body.total / 100));
    const key = randomUUID();
    const c = await http(`${gw}/api/orders/${r.body.id}/cancel`, { method: 'POST', headers: { ...u.auth, 'idempotency-key': key } });
    assert.equal(c.status, 200, c.text);
    assert.equal(c.body.status, 'CANCELLED');
    const again = await http(`${gw}/api/orders/${r.body.id}/cancel`, { method: 'POST', headers: { ...u.auth, 'idempotency-key': key } });
    assert.equal(again.status, 200);
    const fresh = await http(`${gw}/api/orders/${r.body.id}/cancel`, { method: 'POST', headers: { ...u.auth, 'idempotency-key': randomUUID() } });
    assert.equal(fresh.body.status, 'CANCELLED');
    assert.equal(await balanceOf(gw, u.auth), 1_000_000);
    assert.equal(await pointsOf(gw, u.auth), 0);
    const inv = await inventoryOf(gw, admin, 'p-0007');
    assert.deepEqual([inv.available, inv.reserved, inv.sold], [inv0.available, inv0.reserved, inv0.sold]);
  });

  // That the answer does not wait for award-points is the saga runtime's test (settles); here,
  // that an order whose points cannot be awarded yet is still confirmed and answered.
  test('with the points service stopped an order is still CONFIRMED and answered 201, and its points follow once the service is back', async () => {
    const u = await newUser(gw);
    sys.sup.pause('points-1');
    let r: Awaited<ReturnType<typeof placeOrder>>;
    try {
      r = await placeOrder(gw, u.auth, [{ productId: 'p-0010', quantity: 1 }]);
    } finally {
      sys.sup.resume('points-1');
    }
    assert.equal(r.status, 201, 'answered although award-points could not run');
    assert.equal(r.body.status, 'CONFIRMED');
    await pollUntil('points awarded once the points service is back', async () => (await pointsOf(gw, u.auth)) === Math.floor(r.body.total / 100));
  });

  test('an order is answered once it is CONFIRMED, while its points are awarded; a cancel sent at once waits for them and succeeds (no 409)', async () => {
    const u = await newUser(gw);
    const r = await placeOrder(gw, u.auth, [{ productId: 'p-0009', quantity: 2 }]);
    assert.equal(r.status, 201);
    assert.equal(r.body.status, 'CONFIRMED');
    const c = await http(`${gw}/api/orders/${r.body.id}/cancel`, { method: 'POST', headers: { ...u.auth, 'idempotency-key': randomUUID() } });
    assert.equal(c.status, 200, c.text);
    assert.equal(c.body.status, 'CANCELLED');
    assert.equal(await balanceOf(gw, u.auth), 1_000_000, 'refunded');
    assert.equal(await pointsOf(gw, u.auth), 0, 'the points awarded meanwhile were revoked');
  });

  test("another user cannot see or cancel someone's order (404); an admin can see it", async () => {
    const u = await newUser(gw);
    const v = await newUser(gw);
    const r = await placeOrder(gw, u.auth, [{ productId: 'p-0008', quantity: 1 }]);
    assert.equal((await http(`${gw}/api/orders/${r.body.id}`, { headers: v.auth })).status, 404);
    assert.equal((await http(`${gw}/api/orders/${r.body.id}/cancel`, { method: 'POST', headers: { ...v.auth, 'idempotency-key': randomUUID() } })).status, 404);
    assert.equal((await http(`${gw}/api/orders/${r.body.id}`, { headers: admin })).status, 200);
  });
});

describe('crashes', () => {
  async function crashAt(u: TestUser, point: string, items: Array<{ productId: string; quantity: number }>, expected: string): Promise<void> {
    const orderUrl = await serviceUrl(sys.controlUrl, 'order');
    const arm = await http(`${orderUrl}/internal/test/faults`, { method: 'POST', json: { crash: [point] } });
    assert.equal(arm.status, 200, arm.text);
    const pid = sys.sup.children.get('order-1')!.pid!;
    const key = randomUUID();
    await placeOrder(gw, u.auth, items, { key, waitS: 0 }).catch(() => null);
    await sys.sup.waitRestarted('order-1', pid, 15_000);
    // The client retries with its key until it gets an answer: the order exists exactly once.
    const r = await pollUntil(`order placed (${point})`, async () => {
      const x = await placeOrder(gw, u.auth, items, { key, waitS: 0 });
      return x.status === 201 || x.status === 202 ? x : null;
    }, 15_000, 100);
    const done = await terminalOrder(gw, u.auth, r.body.id, 30_000);
    assert.equal(done.status, expected, `${point}: ${JSON.stringify(done)}`);
  }

  const forward = ['reserve-stock', 'charge-wallet', 'confirm-reservation', 'confirm-order', 'award-points'];
  test('a kill -9 right before and right after each step: every saga ends CONFIRMED, nothing charged twice', async () => {
    const u = await newUser(gw);
    for (const step of forward) {
      for (const when of ['before', 'after']) await crashAt(u, `${when}:${step}`, [{ productId: 'p-0009', quantity: 1 }], 'CONFIRMED');
    }
    const orders = (await http(`${gw}/api/orders?limit=100`, { headers: u.auth })).body.items as Array<{ total: number; status: string }>;
    assert.equal(orders.length, forward.length * 2);
    const spent = orders.reduce((s, o) => s + o.total, 0);
    assert.equal(await balanceOf(gw, u.auth), 1_000_000 - spent, 'each order charged exactly once');
    await pollUntil('points for every order', async () => (await pointsOf(gw, u.auth)) === orders.reduce((s, o) => s + Math.floor(o.total / 100), 0));
    await auditPasses();
  });

  test('a kill -9 around each compensation: the refused order ends FAILED with its stock released', async () => {
    const u = await newUser(gw);
    const p = await createProduct(gw, admin, { id: `crash-pricey-${randomUUID().slice(0, 8)}`, price: 1_000_001, stock: 10 });
    for (const step of ['reserve-stock', 'create-order']) {
      for (const when of ['before', 'after']) await crashAt(u, `${when}:undo:${step}`, [{ productId: p.id, quantity: 1 }], 'FAILED');
    }
    const inv = await inventoryOf(gw, admin, p.id);
    assert.deepEqual([inv.available, inv.reserved, inv.sold], [10, 0, 0]);
    assert.equal(await balanceOf(gw, u.auth), 1_000_000);
    await auditPasses();
  });
});

describe('operators', () => {
  test('a step that keeps failing past the pivot parks the saga as NEEDS_ATTENTION; a retry finishes it', async () => {
    const u = await newUser(gw);
    // An outage: points is stopped (it deregisters) and stays down until released.
    await sys.sup.hold('points-1');
    let id: string;
    try {
      const r = await placeOrder(gw, u.auth, [{ productId: 'p-0010', quantity: 1 }], { waitS: 0 });
      id = r.body.id;
      const parked = await pollUntil('NEEDS_ATTENTION', async () => {
        const l = await http(`${gw}/api/admin/sagas?status=NEEDS_ATTENTION`, { headers: admin });
        return l.body.items.find((s: { id: string }) => s.id === id);
      }, 30_000, 200);
      assert.equal(parked.step, 'award-points');
      assert.equal(parked.type, 'place-order');
      assert.ok(parked.attempts >= 8);
      assert.ok(parked.error);
      assert.equal((await http(`${gw}/api/orders/${id}`, { headers: u.auth })).body.status, 'CONFIRMED', 'past the pivot the order stays confirmed');
    } finally {
      await sys.sup.unhold('points-1');
    }
    const retry = await http(`${gw}/api/admin/sagas/${id}/retry`, { method: 'POST', headers: admin });
    assert.equal(retry.status, 202);
    await pollUntil('saga completed', async () => (await http(`${gw}/api/admin/sagas/${id}`, { headers: admin })).body.status === 'COMPLETED', 20_000, 100);
    const detail = (await http(`${gw}/api/admin/sagas/${id}`, { headers: admin })).body;
    assert.ok(detail.events.some((e: { event: string }) => e.event === 'operator-retry'));
    assert.equal((await http(`${gw}/api/admin/sagas/${id}/retry`, { method: 'POST', headers: admin })).status, 409, 'only NEEDS_ATTENTION sagas are retried');
    await auditPasses();
  });
});

describe('load and input', () => {
  test('500 concurrent orders from 50 users on 10 scarce products: the audit passes, no order stays PENDING', async () => {
    const tag = randomUUID().slice(0, 6);
    const products = await Promise.all(Array.from({ length: 10 }, (_, i) => createProduct(gw, admin, { id: `hot-${tag}-${i}`, price: 1000 + i * 731, stock: 40 })));
    const users = await Promise.all(Array.from({ length: 50 }, () => newUser(gw, 'load')));
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 48_271) % 2_147_483_647;
      return seed % n;
    };
    const jobs = Array.from({ length: 500 }, (_, i) => {
      const u = users[i % users.length]!;
      const picks = new Set<string>();
      const lines = 1 + rnd(3);
      while (picks.size < lines) picks.add(products[rnd(products.length)]!.id);
      return placeOrder(gw, u.auth, [...picks].map((productId) => ({ productId, quantity: 1 + rnd(3) })), { waitS: 0 });
    });
    const results = await Promise.all(jobs);
    const statuses = results.map((r) => r.status);
    assert.ok(statuses.every((s) => s === 202 || s === 201), `statuses: ${[...new Set(statuses)].join(',')}`);
    await auditPasses();
    const summary = (await http(`${gw}/api/admin/orders/summary`, { headers: admin })).body;
    assert.equal(summary.byStatus.PENDING, 0);
    const inv = await Promise.all(products.map((p) => inventoryOf(gw, admin, p.id)));
    assert.ok(inv.every((p) => p.available >= 0 && p.reserved === 0));
    assert.ok(inv.some((p) => p.available === 0 || p.sold > 0), 'the products were actually contended');
  });

  test('bad orders answer 4xx problem+json naming the field, and nothing is written', async () => {
    const u = await newUser(gw);
    const before = (await http(`${gw}/api/admin/orders/summary`, { headers: admin })).body;
    const cases: Array<[unknown, number, string]> = [
      [{ items: [{ productId: 'no-such-product', quantity: 1 }] }, 422, '/body/items/0/productId'],
      [{ items: [{ productId: 'p-0001', quantity: 0 }] }, 400, '/body/items/0/quantity'],
      [{ items: [{ productId: 'p-0001', quantity: -1 }] }, 400, '/body/items/0/quantity'],
      [{ items: [{ productId: 'p-0001', quantity: 1.5 }] }, 400, '/body/items/0/quantity'],
      [{ items: [{ productId: 'p-0001', quantity: 1e9 }] }, 400, '/body/items/0/quantity'],
      [{ items: [{ productId: 'p-0001', quantity: '1' }] }, 400, '/body/items/0/quantity'],
      [{ items: [] }, 400, '/body/items'],
      [{ items: Array.from({ length: 1000 }, (_, i) => ({ productId: `p-${i}`, quantity: 1 })) }, 400, '/body/items'],
      [{ items: [{ productId: 'p-0001', quantity: 1 }, { productId: 'p-0001', quantity: 2 }] }, 400, '/body/items/1/productId'],
      [{ items: [{ productId: 'p-0001', quantity: 1 }], coupon: 'FREE' }, 400, '/body/coupon'],
      [{}, 400, '/body/items'],
    ];
    for (const [body, status, path] of cases) {
      const r = await http(`${gw}/api/orders`, { method: 'POST', json: body, headers: { ...u.auth, 'idempotency-key': randomUUID() } });
      assert.equal(r.status, status, `${JSON.stringify(body).slice(0, 80)} → ${r.text.slice(0, 200)}`);
      assert.match(r.headers.get('content-type') ?? '', /application\/problem\+json/);
      assert.ok(r.body.errors.some((e: { path: string }) => e.path === path), `${path} in ${JSON.stringify(r.body.errors)}`);
    }
    const malformed = await http(`${gw}/api/orders`, { method: 'POST', body: '{"items": [', headers: { ...u.auth, 'idempotency-key': randomUUID(), 'content-type': 'application/json' } });
    assert.equal(malformed.status, 400);
    const after = (await http(`${gw}/api/admin/orders/summary`, { headers: admin })).body;
    assert.deepEqual(after.byStatus, before.byStatus);
    assert.equal((await http(`${gw}/api/orders`, { headers: u.auth })).body.items.length, 0);
  });
});
