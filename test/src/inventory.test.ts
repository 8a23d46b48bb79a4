/**
 * The inventory service on real processes: a user service (for tokens) and two inventory
 * instances sharing one SQLite file. Inventory is called directly, as the order service does.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { mulberry32 } from '@concord/core';
import { ADMIN_ENV, type JsonResponse, type System, adminLogin, http, instances, newUser, pollUntil, serviceUrl, startSystem } from './harness.js';

interface Counters {
  productId: string;
  initial: number;
  available: number;
  reserved: number;
  sold: number;
}

const PROBLEM = /^application\/problem\+json/;

function assertProblem(r: JsonResponse<unknown>, status: number, slug?: string, path?: string): void {
  const body = r.body as { type?: string; errors?: Array<{ path: string }> };
  assert.equal(r.status, status, r.text);
  assert.match(r.headers.get('content-type') ?? '', PROBLEM);
  if (slug) assert.equal(body.type, `https://concord.dev/problems/${slug}`, r.text);
  if (path) assert.equal(body.errors?.[0]?.path, path, r.text);
}

describe('inventory service', () => {
  let sys: System;
  /** Both inventory instances; `inv` is the first. */
  let invs: string[];
  let inv: string;
  let admin: { authorization: string };
  let userAuth: { authorization: string };
  let uniq = 0;
  const id = (prefix: string) => `${prefix}-${process.pid}-${++uniq}`;

  const post = (path: string, json?: unknown, base = inv) => http(`${base}${path}`, { method: 'POST', ...(json === undefined ? {} : { json }) });
  const reserve = (body: unknown, base = inv) => post('/internal/reservations', body, base);
  const command = (rid: string, cmd: 'confirm' | 'release' | 'restock', base = inv) => post(`/internal/reservations/${rid}/${cmd}`, undefined, base);

  async function stock(): Promise<Map<string, Counters>> {
    const r = await http<{ items: Counters[]; nextCursor: string | null }>(`${inv}/api/admin/inventory?limit=10000`, { headers: admin });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.nextCursor, null);
    return new Map(r.body.items.map((c) => [c.productId, c]));
  }
  async function counters(productId: string): Promise<Omit<Counters, 'productId'>> {
    const c = (await stock()).get(productId);
    assert.ok(c, `${productId} in the inventory`);
    const { productId: _, ...rest } = c;
    return rest;
  }
  async function product(stockUnits: number, prefix = 't'): Promise<string> {
    const pid = id(prefix);
    const r = await http(`${inv}/api/admin/products`, {
      method: 'POST',
      headers: admin,
      json: { id: pid, name: `Test ${pid}`, price: 1234, stock: stockUnits },
    });
    assert.equal(r.status, 201, r.text);
    return pid;
  }

  before(async () => {
    sys = await startSystem({
      name: 'inventory',
      topology: 'services:\n  - name: user\n  - name: inventory\n    instances: 2\n',
      env: { ...ADMIN_ENV, CONCORD_SEED_PRODUCTS: '20', CONCORD_RESERVATION_SWEEP: '100ms' },
    });
    const list = (await instances(sys.controlUrl)).filter((i) => i.service === 'inventory' && i.status === 'passing');
    assert.equal(list.length, 2);
    invs = list.map((i) => `http://127.0.0.1:${i.port}`);
    inv = invs[0]!;
    const userUrl = await serviceUrl(sys.controlUrl, 'user');
    admin = (await adminLogin(userUrl)).auth;
    userAuth = (await newUser(userUrl, 'inventory')).auth;
  });
  after(() => sys?.stop());

  test('the 20 demo products are seeded exactly once though two instances started together', async () => {
    const seeded = [...(await stock()).values()].filter((c) => c.productId.startsWith('p-'));
    assert.deepEqual(
      seeded.map((c) => c.productId),
      Array.from({ length: 20 }, (_, i) => `p-${String(i + 1).padStart(4, '0')}`),
    );
    for (const c of seeded) assert.deepEqual([c.initial, c.available, c.reserved, c.sold], [1000, 1000, 0, 0], c.productId);
  });

  test('the public product list pages by id with an opaque cursor, nextCursor null at the end', async () => {
    const ids: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r: JsonResponse<{ items: Array<{ id: string; name: string; price: number; available: number }>; nextCursor: string | null }> = await http(
        `${inv}/api/products?limit=7${cursor ? `&cursor=${cursor}` : ''}`,
      );
      assert.equal(r.status, 200, r.text);
      for (const p of r.body.items) {
        assert.deepEqual(Object.keys(p).sort(), ['available', 'id', 'name', 'price']);
        assert.ok(Number.isInteger(p.price) && p.price >= 100 && p.price <= 10_000, `${p.id} price ${p.price}`);
      }
      ids.push(...r.body.items.map((p) => p.id));
      cursor = r.body.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    assert.equal(cursor, null);
    const seeded = ids.filter((x) => x.startsWith('p-'));
    assert.equal(seeded.length, 20);
    assert.deepEqual(ids, [...ids].sort(), 'ordered by id');
    assert.equal(new Set(ids).size, ids.length, 'no product twice');

    const def = await http(`${inv}/api/products`);
    assert.equal(def.body.items.length, Math.min(20, ids.length), 'default limit 20');
    const one = await http(`${inv}/api/products/p-0003`);
    assert.equal(one.status, 200);
    assert.deepEqual(Object.keys(one.body).sort(), ['available', 'id', 'name', 'price']);
    assertProblem(await http(`${inv}/api/products/p-9999`), 404, 'unknown-product');
    assertProblem(await http(`${inv}/api/products?cursor=not-a-cursor!`), 400, 'validation', '/query/cursor');
    assertProblem(await http(`${inv}/api/products?limit=101`), 400, 'validation', '/query/limit');
    assertProblem(await http(`${inv}/api/products?limit=0`), 400, 'validation', '/query/limit');
    assertProblem(await http(`${inv}/api/products?page=2`), 400, 'validation', '/query/page');
  });

  test('the internal lookup answers known ids in the order asked and omits unknown ones', async () => {
    const r = await http(`${inv}/internal/products?ids=p-0002,nope,p-0001,p-0002`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(
      r.body.items.map((p: { id: string }) => p.id),
      ['p-0002', 'p-0001'],
    );
    const many = Array.from({ length: 101 }, (_, i) => `x${i}`).join(',');
    assertProblem(await http(`${inv}/internal/products?ids=${many}`), 400, 'validation', '/query/ids');
    assertProblem(await http(`${inv}/internal/products?ids=a,,b`), 400, 'validation', '/query/ids');
    assertProblem(await http(`${inv}/internal/products`), 400, 'validation', '/query/ids');
  });

  test('a reservation is all-or-nothing: one item short refuses it and reserves nothing', async () => {
    const plenty = await product(10);
    const scarce = await product(2);
    const rid = id('r');
    const r = await reserve({
      reservationId: rid,
      orderId: rid,
      items: [
        { productId: plenty, quantity: 5 },
        { productId: scarce, quantity: 3 },
      ],
    });
    assertProblem(r, 409, 'insufficient-stock');
    assert.deepEqual([r.body.productId, r.body.requested, r.body.available], [scarce, 3, 2]);
    assert.deepEqual(await counters(plenty), { initial: 10, available: 10, reserved: 0, sold: 0 });
    assert.deepEqual(await counters(scarce), { initial: 2, available: 2, reserved: 0, sold: 0 });
    assertProblem(await http(`${inv}/internal/reservations/${rid}`), 404, 'unknown-reservation');

    const unknown = await reserve({
      reservationId: id('r'),
      orderId: 'o',
      items: [
        { productId: plenty, quantity: 1 },
        { productId: 'no-such-product', quantity: 1 },
      ],
    });
    assertProblem(unknown, 404, 'unknown-product');
    assert.equal(unknown.body.productId, 'no-such-product');
    assert.deepEqual(await counters(plenty), { initial: 10, available: 10, reserved: 0, sold: 0 });
  });

  test('reserve, confirm, release and restock received twice (on either instance) are applied once', async () => {
    const pid = await product(10);
    const [a, b] = invs as [string, string];
    const body = (rid: string) => ({ reservationId: rid, orderId: `order-${rid}`, items: [{ productId: pid, quantity: 3 }] });

    const sold = id('r');
    const first = await reserve(body(sold), a);
    assert.equal(first.status, 201, first.text);
    assert.deepEqual([first.body.reservationId, first.body.orderId, first.body.status], [sold, `order-${sold}`, 'RESERVED']);
    assert.ok(Date.parse(first.body.expiresAt) > Date.now() + 10 * 60_000, 'default ttl 15 min');
    const replay = await reserve(body(sold), b);
    assert.equal(replay.status, 200, 'a replay answers the stored reservation');
    assert.deepEqual(replay.body, first.body);
    assert.deepEqual(await counters(pid), { initial: 10, available: 7, reserved: 3, sold: 0 });

    for (const base of [a, b]) assert.deepEqual((await command(sold, 'confirm', base)).body, { reservationId: sold, status: 'CONFIRMED' });
    assert.deepEqual(await counters(pid), { initial: 10, available: 7, reserved: 0, sold: 3 });
    assertProblem(await command(sold, 'release', a), 409, 'reservation-confirmed');

    for (const base of [b, a]) assert.deepEqual((await command(sold, 'restock', base)).body, { reservationId: sold, status: 'RESTOCKED' });
    assert.deepEqual(await counters(pid), { initial: 10, available: 10, reserved: 0, sold: 0 });
    assert.equal((await reserve(body(sold), b)).status, 200, 'a very late replay of the reserve takes nothing');
    assert.deepEqual(await counters(pid), { initial: 10, available: 10, reserved: 0, sold: 0 });

    const released = id('r');
    assert.equal((await reserve(body(released), b)).status, 201);
    for (const base of [a, b]) assert.deepEqual((await command(released, 'release', base)).body, { reservationId: released, status: 'RELEASED' });
    assert.deepEqual(await counters(pid), { initial: 10, available: 10, reserved: 0, sold: 0 });
    assertProblem(await command(released, 'confirm', a), 409, 'reservation-released');
    assertProblem(await command(released, 'restock', a), 409, 'reservation-not-confirmed');
    assertProblem(await reserve(body(released), a), 409, 'reservation-released');
    assertProblem(await command(id('r'), 'confirm', a), 404, 'unknown-reservation');
    assertProblem(await command(id('r'), 'restock', a), 404, 'unknown-reservation');
    assert.deepEqual(await counters(pid), { initial: 10, available: 10, reserved: 0, sold: 0 });

    const mismatch = await reserve({ ...body(released), items: [{ productId: pid, quantity: 4 }] }, a);
    assert.equal(mismatch.status, 409, 'a released id stays refused whatever the body');
  });

  test('the same reserve, confirm and restock sent 10 times at once to both instances are each applied once', async () => {
    const pid = await product(10);
    const rid = id('r');
    const body = { reservationId: rid, orderId: rid, items: [{ productId: pid, quantity: 2 }] };
    const reserves = await Promise.all(Array.from({ length: 10 }, (_, i) => reserve(body, invs[i % 2])));
    assert.deepEqual(
      reserves.map((r) => r.status).sort(),
      [200, 200, 200, 200, 200, 200, 200, 200, 200, 201],
      'one creates, the others answer the stored reservation',
    );
    assert.deepEqual(await counters(pid), { initial: 10, available: 8, reserved: 2, sold: 0 });
    for (const r of await Promise.all(Array.from({ length: 10 }, (_, i) => command(rid, 'confirm', invs[i % 2])))) assert.equal(r.body.status, 'CONFIRMED');
    assert.deepEqual(await counters(pid), { initial: 10, available: 8, reserved: 0, sold: 2 });
    for (const r of await Promise.all(Array.from({ length: 10 }, (_, i) => command(rid, 'restock', invs[i % 2])))) assert.equal(r.body.status, 'RESTOCKED');
    assert.deepEqual(await counters(pid), { initial: 10, available: 10, reserved: 0, sold: 0 });
    const other = await reserve({ ...body, items: [{ productId: pid, quantity: 3 }] });
    assertProblem(other, 422, 'reservation-mismatch');
  });

  test('a release that arrives before its reserve leaves a tombstone: the late reserve is refused and takes nothing', async () => {
    const pid = await product(5);
    const rid = id('r');
    const rel = await command(rid, 'release');
    assert.deepEqual([rel.status, rel.body], [200, { reservationId: rid, status: 'RELEASED' }]);
    const late = await reserve({ reservationId: rid, orderId: rid, items: [{ productId: pid, quantity: 1 }] }, invs[1]);
    assertProblem(late, 409, 'reservation-released');
    assert.deepEqual(await counters(pid), { initial: 5, available: 5, reserved: 0, sold: 0 });
    const stored = await http(`${inv}/internal/reservations/${rid}`);
    assert.deepEqual([stored.body.status, stored.body.items], ['RELEASED', []]);
  });

  test('the sweeper expires an overdue reservation and gives its stock back; it then behaves as released', async () => {
    const pid = await product(4);
    const rid = id('r');
    const r = await reserve({ reservationId: rid, orderId: rid, items: [{ productId: pid, quantity: 4 }], ttlMs: 1000 });
    assert.equal(r.status, 201, r.text);
    assert.ok(Date.parse(r.body.expiresAt) - Date.now() <= 1000);
    assert.deepEqual(await counters(pid), { initial: 4, available: 0, reserved: 4, sold: 0 });
    await pollUntil('the reservation expired', async () => (await http(`${inv}/internal/reservations/${rid}`)).body.status === 'EXPIRED', 10_000, 50);
    assert.deepEqual(await counters(pid), { initial: 4, available: 4, reserved: 0, sold: 0 });
    assertProblem(await command(rid, 'confirm'), 409, 'reservation-released');
    assert.deepEqual((await command(rid, 'release')).body, { reservationId: rid, status: 'EXPIRED' });
    assertProblem(await reserve({ reservationId: rid, orderId: rid, items: [{ productId: pid, quantity: 4 }], ttlMs: 1000 }), 409, 'reservation-released');
    assert.deepEqual(await counters(pid), { initial: 4, available: 4, reserved: 0, sold: 0 });
  });

  test('200 concurrent reservations on 3 scarce products across two instances never oversell, and every unit is accounted for', async () => {
    const seed = Date.now() % 1_000_000;
    const rnd = mulberry32(seed);
    const pids = [await product(40, 'hot'), await product(25, 'hot'), await product(10, 'hot')];
    const initial = new Map(pids.map((p, i) => [p, [40, 25, 10][i]!]));
    const requests = Array.from({ length: 200 }, () => {
      const n = 1 + Math.floor(rnd() * 3);
      const items = Array.from({ length: n }, () => ({ productId: pids[Math.floor(rnd() * 3)]!, quantity: 1 + Math.floor(rnd() * 4) }));
      const rid = id('c');
      return { reservationId: rid, orderId: rid, items };
    });

    let stop = false;
    const snapshots: Array<Map<string, Counters>> = [];
    const watcher = (async () => {
      while (!stop) snapshots.push(await stock());
    })();
    const answers = await Promise.all(requests.map((body, i) => reserve(body, invs[i % 2])));
    stop = true;
    await watcher;

    const won = requests.filter((_, i) => answers[i]!.status === 201);
    for (const [i, r] of answers.entries()) {
      assert.ok(r.status === 201 || (r.status === 409 && r.body.type.endsWith('/insufficient-stock')), `request ${i} (seed ${seed}): ${r.status} ${r.text}`);
    }
    assert.ok(won.length > 0 && won.length < 200, `some win, some lose (won ${won.length}, seed ${seed})`);
    const sum = (list: typeof requests, pid: string) =>
      list.reduce((s, r) => s + r.items.filter((it) => it.productId === pid).reduce((a, it) => a + it.quantity, 0), 0);
    const check = (snap: Map<string, Counters>, what: string) => {
      for (const pid of pids) {
        const c = snap.get(pid)!;
        assert.ok(c.available >= 0 && c.reserved >= 0 && c.sold >= 0, `${what}: ${JSON.stringify(c)}`);
        assert.equal(c.initial, c.available + c.reserved + c.sold, `${what}: ${JSON.stringify(c)}`);
        assert.equal(c.initial, initial.get(pid), what);
      }
    };
    assert.ok(snapshots.length > 0);
    for (const [i, s] of snapshots.entries()) check(s, `snapshot ${i} during the run`);
    const afterReserve = await stock();
    check(afterReserve, 'after reserving');
    for (const pid of pids) assert.equal(afterReserve.get(pid)!.reserved, sum(won, pid), `${pid} reserved = what the winners asked for`);

    // Now settle every winner: confirm the even ones and release the odd ones, each sent twice
    // at once to both instances, all concurrently.
    const confirmed = won.filter((_, i) => i % 2 === 0);
    const settle = won.flatMap((r, i) => {
      const cmd = i % 2 === 0 ? 'confirm' : 'release';
      return [command(r.reservationId, cmd, invs[0]), command(r.reservationId, cmd, invs[1])];
    });
    for (const r of await Promise.all(settle)) assert.equal(r.status, 200, r.text);
    const final = await stock();
    check(final, 'after settling');
    for (const pid of pids) {
      const c = final.get(pid)!;
      assert.deepEqual([c.reserved, c.sold], [0, sum(confirmed, pid)], `${pid} (seed ${seed})`);
    }
  });

  test('bad input is a 4xx problem naming the field, and nothing is written', async () => {
    const pid = await product(10);
    const item = { productId: pid, quantity: 1 };
    const cases: Array<[string, (rid: string) => unknown, string]> = [
      ['quantity 0', (rid) => ({ reservationId: rid, orderId: 'o', items: [{ ...item, quantity: 0 }] }), '/body/items/0/quantity'],
      ['quantity -1', (rid) => ({ reservationId: rid, orderId: 'o', items: [{ ...item, quantity: -1 }] }), '/body/items/0/quantity'],
      ['quantity 1.5', (rid) => ({ reservationId: rid, orderId: 'o', items: [{ ...item, quantity: 1.5 }] }), '/body/items/0/quantity'],
      ['quantity 10^9', (rid) => ({ reservationId: rid, orderId: 'o', items: [{ ...item, quantity: 1e9 }] }), '/body/items/0/quantity'],
      ['quantity "1"', (rid) => ({ reservationId: rid, orderId: 'o', items: [{ ...item, quantity: '1' }] }), '/body/items/0/quantity'],
      ['empty items', (rid) => ({ reservationId: rid, orderId: 'o', items: [] }), '/body/items'],
      ['1000 items', (rid) => ({ reservationId: rid, orderId: 'o', items: Array.from({ length: 1000 }, () => item) }), '/body/items'],
      ['unknown field', (rid) => ({ reservationId: rid, orderId: 'o', items: [item], discount: 100 }), '/body/discount'],
      ['unknown item field', (rid) => ({ reservationId: rid, orderId: 'o', items: [{ ...item, price: 1 }] }), '/body/items/0/price'],
      ['missing orderId', (rid) => ({ reservationId: rid, items: [item] }), '/body/orderId'],
      ['ttlMs below 1 s', (rid) => ({ reservationId: rid, orderId: 'o', items: [item], ttlMs: 10 }), '/body/ttlMs'],
      ['ttlMs above 1 h', (rid) => ({ reservationId: rid, orderId: 'o', items: [item], ttlMs: 3_600_001 }), '/body/ttlMs'],
      ['bad product id', (rid) => ({ reservationId: rid, orderId: 'o', items: [{ ...item, productId: 'has space' }] }), '/body/items/0/productId'],
    ];
    const rids: string[] = [];
    for (const [what, make, path] of cases) {
      const rid = id('bad');
      rids.push(rid);
      const r = await reserve(make(rid));
      assertProblem(r, 400, 'validation', path);
      assert.ok(r.body.detail, what);
    }
    assertProblem(await reserve({ reservationId: 'has space', orderId: 'o', items: [item] }), 400, 'validation', '/body/reservationId');
    const malformed = await http(`${inv}/internal/reservations`, {
      method: 'POST',
      body: '{"reservationId": "x", "items": [',
      headers: { 'content-type': 'application/json' },
    });
    assertProblem(malformed, 400, 'malformed-json', '/body');
    assertProblem(await http(`${inv}/internal/reservations`, { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain' } }), 415);
    assertProblem(await post(`/internal/reservations/${id('r')}/release`, { force: true }), 400, 'validation', '/body/force');
    assertProblem(await post('/internal/reservations/bad%20id/confirm'), 400, 'validation', '/params/id');

    for (const rid of rids) assertProblem(await http(`${inv}/internal/reservations/${rid}`), 404, 'unknown-reservation');
    assert.deepEqual(await counters(pid), { initial: 10, available: 10, reserved: 0, sold: 0 });

    const adminCases: Array<[Record<string, unknown>, string]> = [
      [{ id: 'x y', name: 'n', price: 1, stock: 1 }, '/body/id'],
      [{ id: id('t'), name: '', price: 1, stock: 1 }, '/body/name'],
      [{ id: id('t'), name: '   ', price: 1, stock: 1 }, '/body/name'],
      [{ id: id('t'), name: 'n', price: 0, stock: 1 }, '/body/price'],
      [{ id: id('t'), name: 'n', price: 12.5, stock: 1 }, '/body/price'],
      [{ id: id('t'), name: 'n', price: 1, stock: -1 }, '/body/stock'],
      [{ id: id('t'), name: 'n', price: 1, stock: 1_000_001 }, '/body/stock'],
      [{ id: id('t'), name: 'n', price: 1, stock: 1, available: 5 }, '/body/available'],
    ];
    const before = (await stock()).size;
    for (const [body, path] of adminCases)
      assertProblem(await http(`${inv}/api/admin/products`, { method: 'POST', headers: admin, json: body }), 400, 'validation', path);
    assertProblem(
      await http(`${inv}/api/admin/products/${pid}/stock`, { method: 'POST', headers: admin, json: { quantity: 0 } }),
      400,
      'validation',
      '/body/quantity',
    );
    assertProblem(await http(`${inv}/api/admin/inventory?limit=10001`, { headers: admin }), 400, 'validation', '/query/limit');
    assert.equal((await stock()).size, before, 'no product created');
  });

  test('admin routes need the admin role: 401 without a token (before the body is looked at), 403 for a user', async () => {
    const body = { id: id('t'), name: 'Lamp', price: 100, stock: 1 };
    const routes: Array<[string, string, unknown]> = [
      ['POST', '/api/admin/products', body],
      ['POST', '/api/admin/products/p-0001/stock', { quantity: 1 }],
      ['GET', '/api/admin/inventory', undefined],
    ];
    for (const [method, path, json] of routes) {
      assertProblem(await http(`${inv}${path}`, { method, ...(json ? { json } : {}) }), 401, 'unauthorized');
      assertProblem(await http(`${inv}${path}`, { method, headers: { authorization: 'Bearer not.a.token' }, ...(json ? { json } : {}) }), 401);
      assertProblem(await http(`${inv}${path}`, { method, headers: userAuth, ...(json ? { json } : {}) }), 403, 'forbidden');
    }
    assertProblem(await http(`${inv}/api/admin/products`, { method: 'POST', json: { nonsense: true } }), 401, 'unauthorized');
    assertProblem(await http(`${inv}/api/products/${body.id}`), 404, 'unknown-product');

    const created = await http(`${inv}/api/admin/products`, { method: 'POST', headers: admin, json: body });
    assert.equal(created.status, 201, created.text);
    assert.deepEqual(created.body, { id: body.id, name: 'Lamp', price: 100, available: 1, initial: 1, reserved: 0, sold: 0 });
    assertProblem(await http(`${inv}/api/admin/products`, { method: 'POST', headers: admin, json: body }), 409, 'product-exists');
    const added = await http(`${inv}/api/admin/products/${body.id}/stock`, { method: 'POST', headers: admin, json: { quantity: 9 } });
    assert.deepEqual([added.status, added.body.initial, added.body.available], [200, 10, 10]);
    assertProblem(await http(`${inv}/api/admin/products/no-such/stock`, { method: 'POST', headers: admin, json: { quantity: 1 } }), 404, 'unknown-product');
    const seen = await http(`${invs[1]}/api/products/${body.id}`);
    assert.deepEqual(seen.body, { id: body.id, name: 'Lamp', price: 100, available: 10 }, 'the other instance sees it (one database)');
  });

  test('the admin inventory pages with a cursor too', async () => {
    const all = [...(await stock()).keys()];
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 100; i++) {
      const r: JsonResponse<{ items: Counters[]; nextCursor: string | null }> = await http(
        `${inv}/api/admin/inventory?limit=3${cursor ? `&cursor=${cursor}` : ''}`,
        { headers: admin },
      );
      assert.equal(r.status, 200);
      seen.push(...r.body.items.map((c) => c.productId));
      cursor = r.body.nextCursor;
      if (!cursor) break;
    }
    assert.deepEqual(seen, all);
  });
});
