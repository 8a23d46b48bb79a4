/**
 * Two order instances: an order is answered once it is CONFIRMED, while its saga still awards the
 * points, and a cancel that reaches the other instance meanwhile waits for that saga (reading it
 * again, since it is not driven there) instead of answering 409 order-settling.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { ADMIN_ENV, http, instances, newUser, pollUntil, startSystem, type System } from './harness.js';
import { balanceOf, placeOrder, pointsOf } from './order-helpers.js';

let sys: System;
let gw: string;

before(async () => {
  sys = await startSystem({
    name: 'order-instances',
    topology:
      'services:\n  - name: user\n  - name: inventory\n  - name: payment\n  - name: points\n  - name: recommendation\n  - name: order\n    instances: 2\n  - name: gateway\n',
    env: {
      ...ADMIN_ENV,
      CONCORD_SEED_PRODUCTS: '5',
      CONCORD_SCRYPT_COST: '10',
      CONCORD_RATE_LIMIT_PER_USER: '0',
      CONCORD_RATE_LIMIT_PER_IP: '0',
      CONCORD_SAGA_STEP_TIMEOUT: '1s',
      CONCORD_SAGA_BACKOFF_CAP: '200ms',
    },
  });
  gw = sys.gatewayUrl as string;
});
after(() => sys?.stop());

/** Every passing order instance's origin, in id order (order-1, order-2). */
async function orderUrls(): Promise<string[]> {
  const found = await pollUntil('two passing order instances', async () => {
    const all = (await instances(sys.controlUrl)).filter((i) => i.service === 'order' && i.status === 'passing');
    return all.length >= 2 ? all : null;
  });
  return found.sort((a, b) => a.id.localeCompare(b.id)).map((i) => `http://127.0.0.1:${i.port}`);
}

test('a cancel reaching the order instance that does not drive the placing saga waits for it and succeeds', async () => {
  const [first, second] = (await orderUrls()) as [string, string];
  const u = await newUser(gw);
  // The points service stopped: the placing saga stays at award-points after the order is confirmed.
  sys.sup.pause('points-1');
  let resumed = false;
  try {
    const r = await placeOrder(first, u.auth, [{ productId: 'p-0001', quantity: 1 }]);
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.status, 'CONFIRMED');
    // Sent while the saga cannot end; the points service comes back after it has been sent.
    const cancel = http(`${second}/api/orders/${r.body.id}/cancel`, {
      method: 'POST',
      headers: { ...u.auth, 'idempotency-key': randomUUID(), prefer: 'wait=15' },
    });
    sys.sup.resume('points-1');
    resumed = true;
    const c = await cancel;
    assert.equal(c.status, 200, c.text);
    assert.equal(c.body.status, 'CANCELLED');
    assert.equal(await balanceOf(gw, u.auth), 1_000_000, 'refunded');
    await pollUntil('the points awarded then revoked', async () => ((await pointsOf(gw, u.auth)) === 0 ? true : null));
  } finally {
    if (!resumed) sys.sup.resume('points-1');
  }
});
