/**
 * The web console in a real browser (Debian's chromium driven by playwright-core) against a
 * whole system: every service on the topology with live edges after an order, the waterfall
 * of that order's trace, the canary slider applying a VirtualService, the retry of a
 * NEEDS_ATTENTION saga, and a trace list that stays responsive with 10,000 traces stored.
 * Screenshots of every page land in test-output/console/.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Browser, type Page, chromium } from 'playwright-core';
import { ADMIN_ENV, adminLogin, DEFAULT_SYSTEM, http, newUser, outputDir, pollUntil, serviceUrl, startSystem, type System, TEST_ADMIN, type TestUser } from './harness.js';
import { placeOrder } from './order-helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const SKIP = existsSync(CHROMIUM) ? false : `Debian's chromium is not installed at ${CHROMIUM} (apt-get install -y chromium; .ci/run installs it when missing)`;

const SERVICES = ['user', 'inventory', 'payment', 'points', 'recommendation', 'order', 'gateway'];
/** What the UI gets to show a change pushed by the control plane (a scrape round is 2 s). */
const UI_TIMEOUT_MS = 15_000;
/** The trace list with 1,000 of 10,000 stored traces must render within this (generous) bound. */
const TRACE_LIST_BOUND_MS = 2500;

let sys: System;
let browser: Browser;
let page: Page;
let user: TestUser;
let admin: Record<string, string>;
let gw: string;
let cp: string;
const shots = outputDir('console');

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

/** The trace id of a response's `traceparent`. */
function traceIdOf(headers: Headers): string {
  const tp = headers.get('traceparent') ?? '';
  const m = /^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(tp);
  assert.ok(m, `the answer carries a W3C traceparent (got "${tp}")`);
  return m[1] as string;
}

describe('the console in a browser', { skip: SKIP }, () => {
  before(async () => {
    sys = await startSystem({
      name: 'console',
      topology: DEFAULT_SYSTEM,
      env: {
        ...ADMIN_ENV,
        CONCORD_TEST_FAULTS: '1',
        CONCORD_SEED_PRODUCTS: '20',
        CONCORD_SCRYPT_COST: '10',
        CONCORD_RATE_LIMIT_PER_USER: '0',
        CONCORD_RATE_LIMIT_PER_IP: '0',
        CONCORD_SAGA_MAX_COMPENSATION_ATTEMPTS: '4',
        CONCORD_SAGA_BACKOFF_CAP: '100ms',
      },
    });
    gw = sys.gatewayUrl as string;
    cp = sys.controlUrl;
    const index = await http(`${cp}/`, { headers: { accept: 'text/html' } });
    assert.equal(index.status, 200, `the control plane serves the built console at / (run "npm run build" first): ${index.text.slice(0, 200)}`);
    admin = (await adminLogin(gw)).auth;
    user = await newUser(gw, 'console');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-quic',
        '--no-first-run',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    page.setDefaultTimeout(UI_TIMEOUT_MS);
  });
  after(async () => {
    await browser?.close();
    await sys?.stop();
  });

  let orderTraceId: string;

  test('the topology shows every service, and the edges of an order with rate, errors and p99', async () => {
    const order = await placeOrder(gw, user.auth, [
      { productId: 'p-0001', quantity: 1 },
      { productId: 'p-0002', quantity: 2 },
    ]);
    assert.equal(order.status, 201, order.text);
    assert.equal(order.body.status, 'CONFIRMED');
    orderTraceId = traceIdOf(order.headers);

    await page.goto(`${cp}/`);
    await page.getByTestId('stream-state').and(page.locator('[data-state="live"]')).waitFor();
    for (const s of SERVICES) await page.getByTestId(`topology-node-${s}`).waitFor();
    // The order's calls show up once the scraper has seen them (every 2 s).
    for (const [from, to] of [
      ['gateway', 'order'],
      ['order', 'inventory'],
      ['order', 'payment'],
      ['order', 'points'],
    ]) {
      const edge = page.getByTestId(`topology-edge-${from}-${to}`);
      await edge.waitFor();
      assert.match((await edge.textContent()) ?? '', /\/s · .*% · /, 'edges are labelled with rate · error share · p99');
    }
    const recommendation = page.getByTestId('topology-node-recommendation');
    assert.match((await recommendation.textContent()) ?? '', /2\/2 up · v1 v2/);
    await shot('01-topology');

    await page.getByTestId('nav-services').click();
    await page.getByTestId('instance-recommendation-2').waitFor();
    assert.equal(await page.getByTestId('instance-recommendation-2').getAttribute('data-status'), 'passing');
    await shot('02-services');

    await page.getByTestId('nav-metrics').click();
    await page.getByTestId('chart-rate-order').waitFor();
    await shot('03-metrics');
  });

  test('the waterfall of the placed order shows the spans of every service it touched', async () => {
    // Spans reach the trace store in batches (every 500 ms per process).
    const wanted = ['gateway', 'order', 'inventory', 'payment', 'points'];
    await pollUntil(
      'the order trace in the store with spans of every service',
      async () => {
        const t = await http(`${cp}/api/traces/${orderTraceId}`);
        const services = new Set((t.body?.spans ?? []).map((s: { service: string }) => s.service));
        return t.status === 200 && wanted.every((w) => services.has(w));
      },
      UI_TIMEOUT_MS,
      200,
    );
    await page.getByTestId('nav-traces').click();
    await page.getByTestId('trace-service').selectOption('order');
    await page.getByTestId('trace-search-submit').click();
    await page.waitForURL(/service=order/);
    await page.getByTestId(`trace-row-${orderTraceId}`).waitFor();
    await shot('04-traces');
    await page.getByTestId(`trace-row-${orderTraceId}`).click();
    await page.getByTestId('waterfall').waitFor();
    for (const s of wanted) {
      assert.ok((await page.locator(`[data-testid^="span-"][data-service="${s}"]`).count()) > 0, `a span of ${s} in the waterfall`);
    }
    // Children are indented under their parents.
    assert.ok((await page.locator('[data-testid^="span-"][data-depth="0"]').count()) >= 1);
    assert.ok((await page.locator('[data-testid^="span-"]:not([data-depth="0"])').count()) >= 4);
    await shot('05-waterfall');
  });

  test('moving the canary slider applies a VirtualService, shown as applied at a new version', async () => {
    await page.getByTestId('nav-mesh').click();
    const slider = page.getByTestId('canary-slider');
    await slider.and(page.locator(':enabled')).waitFor();
    const before = Number(await page.getByTestId('config-version').textContent());
    await slider.fill('30');
    const status = page.getByTestId('canary-status');
    await status.and(page.locator('[data-state="applied"]')).waitFor();
    assert.match((await status.textContent()) ?? '', /v2 = 30% at configuration version \d+/);
    const row = page.getByTestId('mesh-resource-VirtualService-recommendation');
    await row.and(page.locator('[data-state="applied"]')).waitFor();
    await pollUntil('the pushed version on the page', async () => Number(await page.getByTestId('config-version').textContent()) > before, UI_TIMEOUT_MS);
    const version = Number(await page.getByTestId('config-version').textContent());
    assert.equal(Number(await row.getAttribute('data-version')), version);
    await shot('06-mesh');

    const config = await http(`${cp}/api/config`);
    assert.equal(config.body.version, version);
    const vs = config.body.resources.find(
      (r: { kind: string; metadata: { name: string } }) => r.kind === 'VirtualService' && r.metadata.name === 'recommendation',
    );
    assert.ok(vs, 'the VirtualService is in force');
    assert.deepEqual(vs.spec.hosts, ['recommendation']);
    assert.deepEqual(vs.spec.http.at(-1).route, [
      { destination: { host: 'recommendation', subset: 'v1' }, weight: 70 },
      { destination: { host: 'recommendation', subset: 'v2' }, weight: 30 },
    ]);
    const dr = config.body.resources.find((r: { kind: string; spec: { host: string } }) => r.kind === 'DestinationRule' && r.spec.host === 'recommendation');
    assert.deepEqual(
      dr.spec.subsets.map((s: { name: string }) => s.name),
      ['v1', 'v2'],
    );
  });

  test('a NEEDS_ATTENTION saga is retried from the console and completes', async () => {
    // An outage past the pivot: points is stopped, so awarding points fails until it parks.
    await sys.sup.hold('points-1');
    let sagaId: string;
    try {
      const r = await placeOrder(gw, user.auth, [{ productId: 'p-0003', quantity: 1 }], { waitS: 0 });
      assert.ok(r.status === 201 || r.status === 202, r.text);
      sagaId = r.body.id;
      await pollUntil(
        'the saga parked as NEEDS_ATTENTION',
        async () => {
          const l = await http(`${gw}/api/admin/sagas?status=NEEDS_ATTENTION`, { headers: admin });
          return l.body.items.some((s: { id: string }) => s.id === sagaId);
        },
        30_000,
        200,
      );
    } finally {
      await sys.sup.unhold('points-1');
    }
    await serviceUrl(cp, 'points');

    await page.getByTestId('nav-sagas').click();
    await page.getByTestId('login-email').fill(TEST_ADMIN.email);
    await page.getByTestId('login-password').fill(TEST_ADMIN.password);
    await page.getByTestId('login-submit').click();
    await page.getByTestId('saga-tab-NEEDS_ATTENTION').click();
    const row = page.getByTestId(`saga-row-${sagaId}`);
    await row.waitFor();
    assert.equal(await row.getAttribute('data-status'), 'NEEDS_ATTENTION');
    await shot('07-sagas');
    await row.click();
    const status = page.getByTestId('saga-status');
    await status.and(page.locator('[data-status="NEEDS_ATTENTION"]')).waitFor();
    await page.getByTestId('saga-timeline').waitFor();
    await shot('08-saga-needs-attention');
    await page.getByTestId('saga-retry').click();
    await status.and(page.locator('[data-status="COMPLETED"]')).waitFor({ timeout: 20_000 });
    assert.ok((await page.getByTestId('saga-timeline').textContent())?.includes('operator-retry'), 'the timeline shows the operator retry');
    await shot('09-saga-completed');
    const detail = await http(`${gw}/api/admin/sagas/${sagaId}`, { headers: admin });
    assert.equal(detail.body.status, 'COMPLETED');
  });

  test('with 10,000 traces stored, the trace list of 1,000 renders within the bound', async () => {
    const batch = 2000;
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    for (let b = 0; b < 10_000 / batch; b++) {
      const spans = [];
      for (let i = 0; i < batch; i++) {
        const traceId = randomBytes(16).toString('hex');
        const root = randomBytes(8).toString('hex');
        const start = nowNs - BigInt((b * batch + i) * 1_000_000);
        spans.push(
          {
            traceId,
            spanId: root,
            name: 'GET /synthetic',
            kind: 2,
            startTimeUnixNano: String(start),
            endTimeUnixNano: String(start + 12_000_000n),
            status: { code: i % 50 === 0 ? 2 : 1 },
          },
          {
            traceId,
            spanId: randomBytes(8).toString('hex'),
            parentSpanId: root,
            name: 'SELECT',
            kind: 3,
            startTimeUnixNano: String(start + 1_000_000n),
            endTimeUnixNano: String(start + 9_000_000n),
          },
        );
      }
      const r = await http(`${cp}/v1/traces`, {
        method: 'POST',
        json: { resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'synthetic' } }] }, scopeSpans: [{ spans }] }] },
      });
      assert.equal(r.status, 200, r.text);
    }
    const stored = (await http(`${cp}/api/traces?limit=1`)).body.stored;
    assert.ok(stored >= 10_000, `stored ${stored}`);

    await page.getByTestId('nav-traces').click();
    await page.getByTestId('trace-service').selectOption('');
    await page.getByTestId('trace-limit').selectOption('1000');
    const t0 = Date.now();
    await page.getByTestId('trace-search-submit').click();
    await page.locator('[data-testid="trace-list"][data-count="1000"] [data-testid^="trace-row-"]').first().waitFor();
    const tookMs = Date.now() - t0;
    // Virtualised: a screenful of rows in the DOM, not a thousand.
    const rendered = await page.locator('[data-testid^="trace-row-"]').count();
    assert.ok(rendered < 100, `only the visible rows are rendered (${rendered})`);
    await shot('10-traces-10k');
    assert.ok(tookMs < TRACE_LIST_BOUND_MS, `1,000 of 10,000 traces listed in ${tookMs} ms (bound ${TRACE_LIST_BOUND_MS} ms)`);
    // Scrolling to the end stays on the same small DOM.
    await page.getByTestId('trace-list').evaluate((el) => {
      el.scrollTop = el.scrollHeight;
    });
    await page.locator('[data-testid^="trace-row-"]').last().waitFor();
    assert.ok((await page.locator('[data-testid^="trace-row-"]').count()) < 100);
  });
});
