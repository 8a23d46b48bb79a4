/**
 * GET /api/user-dashboard/:userId on real processes: five upstreams in parallel under one
 * deadline, each behind a circuit breaker. A killed or hung part degrades the answer (last good
 * value, else empty) instead of failing it; the breaker opens after its threshold, sends no call
 * while OPEN, half-opens after its timeout, and closes once the upstream is back.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ProcessSpec } from '@concord/cli';
import { ADMIN_ENV, type System, type TestUser, adminLogin, http, newUser, pollUntil, startSystem } from './harness.js';
import { placeOrder } from './order-helpers.js';

const DEADLINE_MS = 800;
const BREAKER = { failures: 3, successes: 2, timeoutMs: 2000 };
/** The gateway's timeout for proxied routes. */
const UPSTREAM_TIMEOUT_MS = 1000;

const TOPOLOGY = `services:
  - name: user
  - name: inventory
  - name: payment
  - name: points
  - name: recommendation
  - name: order
  - name: gateway
    env: { CONCORD_LOG_LEVEL: debug }
`;

/** Longest wait for a message an outbox delivers (see the set-up below). */
const OUTBOX_WAIT_MS = 40_000;

let sys: System;
let gw: string;
let admin: Record<string, string>;
let alice: TestUser;
/** While set, a crashed recommendation instance is restarted into a configuration error: it stays dead. */
let keepRecommendationDead = false;
const healthyEnv = new Map<string, Record<string, string>>();

before(async () => {
  sys = await startSystem({
    name: 'gateway-dashboard',
    topology: TOPOLOGY,
    env: {
      ...ADMIN_ENV,
      CONCORD_SEED_PRODUCTS: '5',
      CONCORD_SCRYPT_COST: '10',
      CONCORD_CHECK_INTERVAL: '300ms',
      CONCORD_RATE_LIMIT_PER_USER: '0',
      CONCORD_RATE_LIMIT_PER_IP: '0',
      CONCORD_BREAKER_FAILURES: String(BREAKER.failures),
      CONCORD_BREAKER_SUCCESSES: String(BREAKER.successes),
      CONCORD_BREAKER_TIMEOUT: `${BREAKER.timeoutMs}ms`,
      CONCORD_DASHBOARD_DEADLINE: `${DEADLINE_MS}ms`,
      CONCORD_GATEWAY_UPSTREAM_TIMEOUT: `${UPSTREAM_TIMEOUT_MS}ms`,
    },
    beforeRestart: (spec: ProcessSpec) => {
      if (spec.service !== 'recommendation') return;
      if (!healthyEnv.has(spec.instanceId)) healthyEnv.set(spec.instanceId, spec.env);
      spec.env = keepRecommendationDead ? { ...spec.env, CONCORD_LOG_LEVEL: 'not-a-level' } : (healthyEnv.get(spec.instanceId) as Record<string, string>);
    },
  });
  gw = sys.gatewayUrl as string;
  admin = (await adminLogin(gw)).auth;
  alice = await newUser(gw, 'dash');
  // The wallet and the recommendation arrive through outboxes: delivered at least once, retried
  // with back-off (100 ms, doubling, up to 30 s). On a loaded machine a few failed first tries
  // take them past pollUntil's default 10 s (seen once in CI): wait for delivery, not for speed.
  await pollUntil('alice’s wallet', async () => (await http(`${gw}/api/wallet`, { headers: alice.auth })).status === 200, OUTBOX_WAIT_MS);
  const o = await placeOrder(gw, alice.auth, [{ productId: 'p-0001', quantity: 2 }]);
  assert.equal(o.body.status, 'CONFIRMED', o.text);
  // Recommendations come from order events: wait until the sale shows up there.
  await pollUntil('a recommendation', async () => (await http(`${gw}/api/recommendations`)).body.items.length > 0, OUTBOX_WAIT_MS);
});
after(() => sys?.stop());

interface BreakerView {
  service: string;
  state: 'CLOSED' | 'OPEN' | 'HALF_OPEN';
  failures: number;
  openedAt: string | null;
  calls: number;
  shortCircuited: number;
  succeeded: number;
  failed: number;
  opened: number;
}

const GAUGE_VALUE = { CLOSED: 0, HALF_OPEN: 1, OPEN: 2 } as const;

/** The breaker of one upstream, as the admin route shows it — and the same state on /metrics. */
async function breaker(service: string): Promise<BreakerView> {
  const r = await http(`${gw}/api/gateway/breakers`, { headers: admin });
  assert.equal(r.status, 200, r.text);
  const view = (r.body.items as BreakerView[]).find((b) => b.service === service) as BreakerView;
  const metrics = await (await fetch(`${gw}/metrics`)).text();
  const gauge = new RegExp(`^concord_circuit_breaker_state\\{[^}]*destination_service="${service}\\.default\\.svc\\.cluster\\.local"[^}]*\\} (\\d)$`, 'm').exec(metrics);
  assert.ok(gauge, `concord_circuit_breaker_state for ${service} is on /metrics`);
  assert.equal(Number(gauge[1]), GAUGE_VALUE[view.state], `the gauge says ${view.state}`);
  return view;
}

// biome-ignore lint/suspicious/noExplicitAny: the dashboard's parts are JSON of several shapes
type Body = any;

async function dashboard(u: TestUser = alice): Promise<{ status: number; body: Body; ms: number }> {
  const t0 = performance.now();
  const r = await http(`${gw}/api/user-dashboard/${u.id}`, { headers: u.auth });
  return { status: r.status, body: r.body, ms: performance.now() - t0 };
}

/** A healthy dashboard (every part answered): caches every part's last good value. */
async function healthyDashboard(): Promise<Body> {
  return pollUntil('a dashboard with no degraded part', async () => {
    const d = await dashboard();
    return d.status === 200 && d.body.degraded.length === 0 ? d.body : null;
  }, 20_000, 100);
}

async function closed(service: string): Promise<void> {
  await pollUntil(`the ${service} breaker closed`, async () => {
    if ((await breaker(service)).state === 'CLOSED') return true;
    await dashboard(); // half-open trials happen only when there is a call
    return false;
  }, 20_000, 100);
}

describe('aggregation', () => {
  test('all parts healthy: 200 with user, recent orders, wallet, points, recommendations and degraded []', async () => {
    const body = await healthyDashboard();
    assert.equal(body.user.id, alice.id);
    assert.equal(body.user.email, alice.email);
    assert.equal(body.recentOrders.length, 1);
    assert.equal(body.recentOrders[0].userId, alice.id);
    assert.equal(body.wallet.userId, alice.id);
    assert.equal(typeof body.wallet.balance, 'number');
    assert.equal(body.points.userId, alice.id);
    assert.ok(body.recommendations.length > 0);
    assert.deepEqual(Object.keys(body).sort(), ['degraded', 'points', 'recentOrders', 'recommendations', 'user', 'wallet']);
  });

  test("an upstream's own problem passes through unchanged (404 from inventory)", async () => {
    const r = await http(`${gw}/api/products/no-such-product`);
    assert.equal(r.status, 404);
    assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.match(r.headers.get('x-served-by') ?? '', /^inventory@/);
    assert.equal(r.body.status, 404);
  });

  test('an unknown user id: 404 for an admin, 403 for a user asking for someone else', async () => {
    const r = await http(`${gw}/api/user-dashboard/no-such-user`, { headers: admin });
    assert.equal(r.status, 404, r.text);
    assert.equal((await http(`${gw}/api/user-dashboard/no-such-user`, { headers: alice.auth })).status, 403);
  });

  test('the five calls run in parallel under one deadline: two hung parts cost one deadline, not two', async () => {
    await healthyDashboard();
    const before = await healthyDashboard();
    sys.sup.pause('payment-1');
    sys.sup.pause('points-1');
    let d: Awaited<ReturnType<typeof dashboard>>;
    try {
      d = await dashboard();
    } finally {
      sys.sup.resume('payment-1');
      sys.sup.resume('points-1');
    }
    assert.equal(d.status, 200);
    assert.deepEqual([...d.body.degraded].sort(), ['points', 'wallet']);
    assert.ok(d.ms >= DEADLINE_MS * 0.9, `waited for the deadline (${d.ms.toFixed(0)} ms)`);
    assert.ok(d.ms < DEADLINE_MS * 1.9, `one deadline for both hung parts, not two (${d.ms.toFixed(0)} ms)`);
    // A failed part falls back to its last good value.
    assert.deepEqual(d.body.wallet, before.wallet);
    assert.deepEqual(d.body.points, before.points);
    assert.equal(d.body.user.id, alice.id);
    await healthyDashboard();
  });

  test('a failed part with nothing cached falls back to empty; a hung user service with nothing cached is 503 problem+json', async () => {
    const bob = await newUser(gw, 'dash-new');
    sys.sup.pause('payment-1');
    let d: Awaited<ReturnType<typeof dashboard>>;
    try {
      d = await dashboard(bob);
    } finally {
      sys.sup.resume('payment-1');
    }
    assert.equal(d.status, 200);
    assert.ok(d.body.degraded.includes('wallet'));
    assert.equal(d.body.wallet, null, 'no last good value: empty');
    assert.equal(d.body.user.id, bob.id);

    const carol = await newUser(gw, 'dash-nouser');
    sys.sup.pause('user-1');
    let r: Awaited<ReturnType<typeof http<Body>>>;
    const t0 = performance.now();
    try {
      r = await http(`${gw}/api/user-dashboard/${carol.id}`, { headers: carol.auth });
    } finally {
      sys.sup.resume('user-1');
    }
    assert.equal(r.status, 503, r.text);
    assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.ok(r.body.degraded.includes('user'));
    assert.ok(performance.now() - t0 < DEADLINE_MS + 1000, 'answered within its deadline');
    await closed('user');
    await closed('payment');
  });
});

describe('the recommendation breaker', () => {
  test('recommendation killed: 200 with degraded ["recommendations"] within the deadline; OPEN after the threshold; no call while OPEN; CLOSED once it is back', async () => {
    await closed('recommendation');
    const good = await healthyDashboard();
    const start = await breaker('recommendation');
    keepRecommendationDead = true;
    let pid: number;
    try {
      pid = sys.sup.signal('recommendation-1', 'SIGKILL');
    } catch (err) {
      keepRecommendationDead = false;
      throw err;
    }
    try {
      for (let i = 1; i <= BREAKER.failures; i++) {
        const d = await dashboard();
        assert.equal(d.status, 200);
        assert.deepEqual(d.body.degraded, ['recommendations']);
        assert.ok(d.ms < DEADLINE_MS + 300, `within the deadline (${d.ms.toFixed(0)} ms)`);
        assert.deepEqual(d.body.recommendations, good.recommendations, 'the last good value stands in');
        assert.equal(d.body.user.id, alice.id);
        const b = await breaker('recommendation');
        assert.equal(b.state, i < BREAKER.failures ? 'CLOSED' : 'OPEN', `after ${i} failure(s)`);
      }
      const opened = await breaker('recommendation');
      assert.equal(opened.opened, start.opened + 1);
      for (let i = 0; i < 5; i++) {
        const d = await dashboard();
        assert.equal(d.status, 200);
        assert.deepEqual(d.body.degraded, ['recommendations']);
      }
      const stillOpen = await breaker('recommendation');
      assert.equal(stillOpen.state, 'OPEN');
      assert.equal(stillOpen.calls, opened.calls, 'no call reached the dead upstream while OPEN');
      assert.equal(stillOpen.shortCircuited, opened.shortCircuited + 5);

      // The proxied route of a dead service: 503 problem+json (no stack trace), with Retry-After.
      const proxied = await http(`${gw}/api/recommendations`);
      assert.equal(proxied.status, 503, proxied.text);
      assert.match(proxied.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.match(proxied.headers.get('x-served-by') ?? '', /^gateway@/);
      assert.ok(Number(proxied.headers.get('retry-after')) >= 1);
      assert.doesNotMatch(proxied.text, /\n\s+at /);
    } finally {
      keepRecommendationDead = false;
    }
    await sys.sup.waitRestarted('recommendation-1', pid, 30_000);
    await closed('recommendation');
    const back = await healthyDashboard();
    assert.deepEqual(back.degraded, []);
  });

  test('recommendation hung: each call costs the deadline until the breaker opens, then none; a failed HALF_OPEN trial re-opens it; two good trials close it', async () => {
    await closed('recommendation');
    const good = await healthyDashboard();
    sys.sup.pause('recommendation-1');
    let resumed = false;
    try {
      // The proxied route of a hung service: 504 problem+json after the route's timeout.
      const t0 = performance.now();
      const proxied = await http(`${gw}/api/recommendations`);
      const tookMs = performance.now() - t0;
      assert.equal(proxied.status, 504, proxied.text);
      assert.match(proxied.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.ok(tookMs < UPSTREAM_TIMEOUT_MS + 1000, `within the route timeout (${tookMs.toFixed(0)} ms)`);

      for (let i = 1; i <= BREAKER.failures; i++) {
        const d = await dashboard();
        assert.equal(d.status, 200);
        assert.deepEqual(d.body.degraded, ['recommendations']);
        assert.ok(d.ms >= DEADLINE_MS * 0.9, `call ${i} waited on the hung upstream until the deadline (${d.ms.toFixed(0)} ms)`);
        assert.ok(d.ms < DEADLINE_MS + 500, `and no longer (${d.ms.toFixed(0)} ms)`);
        assert.deepEqual(d.body.recommendations, good.recommendations);
      }
      const opened = await breaker('recommendation');
      assert.equal(opened.state, 'OPEN');
      const openedAtMs = Date.parse(opened.openedAt as string);

      // OPEN: answers no longer wait on the hung upstream, and no call goes out.
      for (let i = 0; i < 3; i++) {
        const d = await dashboard();
        assert.deepEqual(d.body.degraded, ['recommendations']);
        assert.ok(d.ms < DEADLINE_MS * 0.9, `short-circuited, not waiting for the deadline (${d.ms.toFixed(0)} ms)`);
      }
      assert.equal((await breaker('recommendation')).calls, opened.calls);

      // After the timeout one trial goes out (HALF_OPEN); it hangs too, so the breaker re-opens.
      const trial = await pollUntil('a half-open trial call', async () => {
        const atMs = Date.now();
        const d = await dashboard();
        const b = await breaker('recommendation');
        return b.calls > opened.calls ? { d, b, atMs } : null;
      }, BREAKER.timeoutMs + 5000, 50);
      assert.equal(trial.b.calls, opened.calls + 1, 'exactly one trial');
      // (the call that carried the trial started at atMs; 100 ms for it to reach the breaker)
      assert.ok(trial.atMs + 100 - openedAtMs >= BREAKER.timeoutMs, `no trial before the timeout (${trial.atMs - openedAtMs} ms)`);
      assert.deepEqual(trial.d.body.degraded, ['recommendations']);
      assert.equal(trial.b.state, 'OPEN', 'a failure in HALF_OPEN re-opens the breaker');
      assert.equal(trial.b.opened, opened.opened + 1);
      assert.ok(Date.parse(trial.b.openedAt as string) > openedAtMs, 'with a fresh timeout');

      sys.sup.resume('recommendation-1');
      resumed = true;
      const reopenedAtMs = Date.parse(trial.b.openedAt as string);
      // Back: after the timeout a trial succeeds (HALF_OPEN, one success), the next closes it.
      const first = await pollUntil('a successful half-open trial', async () => {
        const atMs = Date.now();
        const d = await dashboard();
        const b = await breaker('recommendation');
        return b.calls > trial.b.calls ? { d, b, atMs } : null;
      }, BREAKER.timeoutMs + 5000, 50);
      assert.ok(first.atMs + 100 - reopenedAtMs >= BREAKER.timeoutMs, `no trial before the timeout (${first.atMs - reopenedAtMs} ms)`);
      assert.deepEqual(first.d.body.degraded, []);
      assert.equal(first.b.state, BREAKER.successes > 1 ? 'HALF_OPEN' : 'CLOSED');
      const second = await dashboard();
      assert.deepEqual(second.body.degraded, []);
      const b = await breaker('recommendation');
      assert.equal(b.state, 'CLOSED', `closed after ${BREAKER.successes} successful trials`);
      assert.equal(b.failures, 0);
    } finally {
      if (!resumed) sys.sup.resume('recommendation-1');
    }
  });

  test('breakers are per upstream: a hung payment service opens only its own', async () => {
    await closed('payment');
    await closed('recommendation');
    sys.sup.pause('payment-1');
    try {
      for (let i = 0; i < BREAKER.failures; i++) assert.deepEqual((await dashboard()).body.degraded, ['wallet']);
      assert.equal((await breaker('payment')).state, 'OPEN');
      for (const s of ['user', 'order', 'points', 'recommendation']) assert.equal((await breaker(s)).state, 'CLOSED', s);
    } finally {
      sys.sup.resume('payment-1');
    }
    await closed('payment');
  });
});
