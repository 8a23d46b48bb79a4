/**
 * Observability end to end: one order → one trace across the services in the right
 * parent/child order; W3C and B3 propagation; OTLP export to any collector; Prometheus
 * metrics with Istio's names, scraped by a real Prometheus through the HTTP service discovery
 * endpoint, answering the guide's PromQL.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as netServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { appEntry } from '@concord/cli';
import { ADMIN_ENV, DEFAULT_SYSTEM, http, newUser, outputDir, pollUntil, startSystem, type System } from './harness.js';
import { applyAndWait, deleteResource, waitAcked } from './mesh-helpers.js';
import { placeOrder } from './order-helpers.js';


interface Span {
  spanId: string;
  parentSpanId: string | null;
  service: string;
  name: string;
  kind: string;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  status: string;
}

let sys: System;
let gw: string;

before(async () => {
  sys = await startSystem({
    name: 'observability',
    topology: DEFAULT_SYSTEM,
    env: { ...ADMIN_ENV, CONCORD_SCRYPT_COST: '10', CONCORD_RATE_LIMIT_PER_USER: '0', CONCORD_RATE_LIMIT_PER_IP: '0', OTEL_TRACES_SAMPLER: 'always_on' },
  });
  gw = sys.gatewayUrl as string;
});
after(() => sys?.stop());

const traceIdOf = (traceparent: string | null) => /^00-([0-9a-f]{32})-[0-9a-f]{16}-0[01]$/.exec(traceparent ?? '')?.[1];

async function traceWith(traceId: string, services: string[]): Promise<Span[]> {
  return pollUntil(
    `trace ${traceId} with ${services.join(', ')}`,
    async () => {
      const r = await http<{ spans: Span[] }>(`${sys.controlUrl}/api/traces/${traceId}`);
      if (r.status !== 200) return null;
      const have = new Set(r.body.spans.filter((s) => s.kind === 'SERVER').map((s) => s.service));
      return services.every((s) => have.has(s)) ? r.body.spans : null;
    },
    15_000,
    200,
  );
}

/** The chain of services from a span up to the root, following parents. */
function ancestry(spans: Span[], span: Span): Span[] {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const out: Span[] = [];
  let cur: Span | undefined = span;
  for (let i = 0; cur && i < 100; i++) {
    out.push(cur);
    cur = cur.parentSpanId ? byId.get(cur.parentSpanId) : undefined;
  }
  return out;
}

describe('tracing', () => {
  test('one order through the gateway is one trace: gateway → order → inventory, payment, points, parent before child', async () => {
    const u = await newUser(gw);
    const r = await placeOrder(gw, u.auth, [{ productId: 'p-0001', quantity: 1 }]);
    assert.equal(r.status, 201);
    assert.equal(r.body.status, 'CONFIRMED');
    const traceId = traceIdOf(r.headers.get('traceparent'));
    assert.ok(traceId, `the response carries a traceparent: ${r.headers.get('traceparent')}`);
    const spans = await traceWith(traceId, ['gateway', 'order', 'inventory', 'payment', 'points']);
    const server = (svc: string, name?: RegExp) => spans.find((s) => s.kind === 'SERVER' && s.service === svc && (!name || name.test(s.name)));
    const gwSpan = server('gateway', /POST \/api\/orders/);
    assert.ok(gwSpan, 'a gateway server span');
    const roots = spans.filter((s) => !s.parentSpanId || !spans.some((p) => p.spanId === s.parentSpanId));
    assert.deepEqual(roots.map((s) => s.spanId), [gwSpan.spanId], 'the gateway span is the only root');
    const orderSpan = server('order', /POST \/api\/orders/);
    assert.ok(orderSpan);
    assert.ok(ancestry(spans, orderSpan).includes(gwSpan), 'order runs under the gateway');
    for (const svc of ['inventory', 'payment', 'points']) {
      const s = server(svc);
      assert.ok(s, `${svc} server span`);
      const chain = ancestry(spans, s);
      assert.ok(chain.includes(orderSpan), `${svc} runs under the order request`);
      const parent = chain[1] as Span;
      assert.equal(parent.kind, 'CLIENT', `${svc} is called through a mesh client span`);
      assert.equal(parent.service, 'order');
      assert.ok(BigInt(parent.startTimeUnixNano) <= BigInt(s.startTimeUnixNano), `${svc}: the client span starts first`);
    }
    assert.ok(spans.some((s) => s.service === 'order' && /^saga place-order reserve-stock/.test(s.name)), 'saga steps are spans');
    assert.ok(spans.some((s) => s.service === 'order' && s.name === 'db.transaction'), 'database transactions are spans');
    const [inv, pay] = [server('inventory'), server('payment')] as [Span, Span];
    assert.ok(BigInt(inv.startTimeUnixNano) < BigInt(pay.startTimeUnixNano), 'stock is reserved before the wallet is charged');
  });

  test('concurrent orders keep their traces apart: every saga step sits in the trace of its own order, under its request, each trace shows the work of the participants for it and has one root', async () => {
    // The trace context travels explicitly (no AsyncLocalStorage): a context leaking from one
    // request into another would put one order's saga spans into another order's trace.
    const users = await Promise.all(Array.from({ length: 4 }, () => newUser(gw)));
    const placed = await Promise.all(
      Array.from({ length: 12 }, (_, i) => placeOrder(gw, (users[i % users.length] as (typeof users)[number]).auth, [{ productId: `p-000${1 + (i % 6)}`, quantity: 1 }])),
    );
    for (const r of placed) {
      assert.equal(r.status, 201);
      const traceId = traceIdOf(r.headers.get('traceparent')) as string;
      const orderId = (r.body as { id: string }).id;
      const spans = (await traceWith(traceId, ['gateway', 'order'])) as Array<Span & { attributes?: Record<string, unknown> }>;
      const sagaSpans = spans.filter((s) => s.name.startsWith('saga place-order '));
      await pollUntil(`all saga steps of ${orderId} in its trace`, async () => {
        const all = (await http<{ spans: Array<Span & { attributes?: Record<string, unknown> }> }>(`${sys.controlUrl}/api/traces/${traceId}`)).body.spans;
        const steps = all.filter((s) => s.name.startsWith('saga place-order '));
        sagaSpans.splice(0, sagaSpans.length, ...steps);
        // Batched participant calls: the work for this order shows in its own trace even when
        // another order's step opened the batch request.
        const participants = ['inventory', 'payment', 'points'].every((svc) => all.some((s) => s.service === svc));
        return steps.length >= 4 && participants ? true : null;
      }, 15_000, 200);
      for (const s of sagaSpans) assert.equal(s.attributes?.['saga.id'], orderId, `${s.name} in the trace of order ${orderId} belongs to it`);
      const orderServer = spans.find((s) => s.service === 'order' && s.kind === 'SERVER');
      assert.ok(orderServer);
      const all = (await http<{ spans: Span[] }>(`${sys.controlUrl}/api/traces/${traceId}`)).body.spans;
      const roots = all.filter((s) => !s.parentSpanId || !all.some((p) => p.spanId === s.parentSpanId));
      assert.equal(roots.length, 1, `one root in the trace of order ${orderId}: ${roots.map((s) => `${s.service} ${s.name}`).join(', ')}`);
      for (const s of sagaSpans) assert.ok(ancestry(all, s).some((a) => a.spanId === orderServer.spanId), `${s.name} runs under the order request`);
    }
  });

  test('a request arriving with B3 headers continues that trace, and the answer carries its traceparent', async () => {
    const traceId = randomUUID().replace(/-/g, '');
    const spanId = randomUUID().replace(/-/g, '').slice(0, 16);
    const r = await http(`${gw}/api/products/p-0002`, { headers: { 'x-b3-traceid': traceId, 'x-b3-spanid': spanId, 'x-b3-sampled': '1' } });
    assert.equal(r.status, 200);
    assert.equal(traceIdOf(r.headers.get('traceparent')), traceId);
    const spans = await traceWith(traceId, ['gateway', 'inventory']);
    const gwSpan = spans.find((s) => s.service === 'gateway' && s.kind === 'SERVER');
    assert.equal(gwSpan?.parentSpanId, spanId, 'the gateway span is a child of the caller B3 span');
    const single = randomUUID().replace(/-/g, '');
    const r2 = await http(`${gw}/api/products/p-0003`, { headers: { b3: `${single}-${spanId}-1` } });
    assert.equal(traceIdOf(r2.headers.get('traceparent')), single, 'single-header b3 is accepted too');
    const w3c = randomUUID().replace(/-/g, '');
    const r3 = await http(`${gw}/api/products/p-0004`, { headers: { traceparent: `00-${w3c}-${spanId}-01` } });
    assert.equal(traceIdOf(r3.headers.get('traceparent')), w3c, 'W3C traceparent is accepted');
  });

  test('the OTLP receiver stores a valid export, answers malformed JSON with a 400 problem naming the body, and keeps a __proto__ attribute inert', async () => {
    const bad = await http(`${sys.controlUrl}/v1/traces`, { method: 'POST', body: '{"resourceSpans": [', headers: { 'content-type': 'application/json' } });
    assert.equal(bad.status, 400);
    assert.match(bad.headers.get('content-type') ?? '', /problem\+json/);
    assert.equal(bad.body.errors?.[0]?.path, '/body');
    const traceId = randomUUID().replace(/-/g, '');
    const spanId = randomUUID().replace(/-/g, '').slice(0, 16);
    const now = BigInt(Date.now()) * 1_000_000n;
    const body = `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"otlp-check"}}]},"scopeSpans":[{"spans":[{"traceId":"${traceId}","spanId":"${spanId}","name":"check","kind":2,"startTimeUnixNano":"${now}","endTimeUnixNano":"${now + 1_000_000n}","attributes":[{"key":"__proto__","value":{"stringValue":"x"}},{"key":"ok","value":{"boolValue":true}}]}]}]}]}`;
    const ok = await http(`${sys.controlUrl}/v1/traces`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    assert.equal(ok.status, 200, ok.text);
    const stored = await http<{ spans: Array<Span & { attributes: Record<string, unknown> }> }>(`${sys.controlUrl}/api/traces/${traceId}`);
    assert.equal(stored.status, 200);
    const span = stored.body.spans[0];
    assert.equal(span?.service, 'otlp-check');
    assert.deepEqual(span?.attributes, { ok: true });
    assert.equal(Object.getPrototypeOf(span?.attributes), Object.prototype);
  });

  test('traces are searchable by service, status and duration', async () => {
    const r = await http<{ items: Array<{ traceId: string; services: string[]; durationMs: number; status: string }> }>(`${sys.controlUrl}/api/traces?service=payment&limit=5`);
    assert.equal(r.status, 200);
    assert.ok(r.body.items.length > 0);
    assert.ok(r.body.items.every((t) => t.services.includes('payment')));
    const slow = await http<{ items: Array<{ durationMs: number }> }>(`${sys.controlUrl}/api/traces?minDurationMs=1000000`);
    assert.deepEqual(slow.body.items, []);
    assert.equal((await http(`${sys.controlUrl}/api/traces?limit=0`)).status, 400);
    assert.equal((await http(`${sys.controlUrl}/api/traces/not-a-trace-id`)).status, 400);
  });

  test('OTEL_EXPORTER_OTLP_ENDPOINT sends spans to any OTLP/HTTP collector instead', async () => {
    const received: unknown[] = [];
    const collector = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        if (req.url === '/v1/traces') received.push(JSON.parse(body));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
    const port = (collector.address() as { port: number }).port;
    const proc = spawn(process.execPath, [appEntry('sample')], {
      env: { ...process.env, CONCORD_REGISTER: 'false', OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, CONCORD_DATA_DIR: join(outputDir('observability'), 'collector') },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const url = await pollUntil('sample listening', () => new Promise<string | null>((r) => proc.stdout.once('data', (d) => r(/"url":"([^"]+)"/.exec(String(d))?.[1] ?? null))), 10_000);
      await http(`${url}/api/sample/hello`);
      await pollUntil('spans at the collector', () => received.length > 0, 10_000);
      assert.match(JSON.stringify(received[0]), /"service.name"/);
    } finally {
      proc.kill('SIGTERM');
      collector.close();
    }
  });
});

describe('sampling by Telemetry resource', () => {
  const WORKLOADS = ['gateway-1', 'order-1', 'inventory-1', 'payment-1', 'points-1'];
  const flagsOf = (traceparent: string | null) => /^00-[0-9a-f]{32}-[0-9a-f]{16}-([0-9a-f]{2})$/.exec(traceparent ?? '')?.[1];

  test("Istio's Telemetry sets the share of sampled traces while the system runs; deleting it restores OTEL_TRACES_SAMPLER", async () => {
    const u = await newUser(gw);
    try {
      await applyAndWait(
        sys,
        `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata:
  name: mesh-default
  namespace: istio-system
spec:
  tracing:
  - randomSamplingPercentage: 0
`,
        WORKLOADS,
      );
      const off = await placeOrder(gw, u.auth, [{ productId: 'p-0001', quantity: 1 }]);
      assert.equal(off.status, 201);
      assert.equal(flagsOf(off.headers.get('traceparent')), '00', 'at 0 % the gateway starts the trace unsampled (the id still travels)');
      // A caller's own sampling decision is followed, as Istio's proxies do.
      const forced = randomUUID().replace(/-/g, '');
      const kept = await http(`${gw}/api/products/p-0002`, { headers: { traceparent: `00-${forced}-${'1'.repeat(16)}-01` } });
      assert.equal(flagsOf(kept.headers.get('traceparent')), '01');
      await traceWith(forced, ['gateway', 'inventory']);

      // A workload override: gateway samples everything, the rest inherits 0 % but follows the
      // gateway's decision, so whole traces are kept.
      await applyAndWait(
        sys,
        `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: gateway-all}
spec:
  selector: {matchLabels: {app: gateway}}
  tracing:
  - randomSamplingPercentage: 100
`,
        WORKLOADS,
      );
      // The configuration status shows the sampling each instance reported running.
      const st = await http<{ instances: Array<{ instanceId: string; tracing: { sampling: unknown } | null }> }>(`${sys.controlUrl}/api/config/status`);
      const samplingOf = (id: string) => st.body.instances.find((i) => i.instanceId === id)?.tracing?.sampling;
      assert.deepEqual(samplingOf('gateway-1'), { percentage: 100, telemetry: 'gateway-all' });
      assert.deepEqual(samplingOf('order-1'), { percentage: 0, telemetry: 'mesh-default' });
      const on = await placeOrder(gw, u.auth, [{ productId: 'p-0001', quantity: 1 }]);
      assert.equal(flagsOf(on.headers.get('traceparent')), '01');
      await traceWith(traceIdOf(on.headers.get('traceparent')) as string, ['gateway', 'order', 'inventory', 'payment', 'points']);
      // Every service has now exported spans that ended after the unsampled order's; each exports
      // in order, so had any of them (this system runs OTEL_TRACES_SAMPLER=always_on, which ignores
      // the caller) not taken the 0 %, the unsampled order's spans would be stored by now.
      const offTrace = traceIdOf(off.headers.get('traceparent')) as string;
      assert.equal((await http(`${sys.controlUrl}/api/traces/${offTrace}`)).status, 404, 'no service recorded the unsampled order');
    } finally {
      await deleteResource(sys, 'Telemetry', 'gateway-all');
      await deleteResource(sys, 'Telemetry', 'mesh-default');
    }
    const status = await http<{ version: number }>(`${sys.controlUrl}/api/config`);
    await waitAcked(sys, WORKLOADS, status.body.version);
    const restored = await http<{ instances: Array<{ instanceId: string; tracing: unknown }> }>(`${sys.controlUrl}/api/config/status`);
    assert.deepEqual(restored.body.instances.find((i) => i.instanceId === 'gateway-1')?.tracing, { enabled: true, sampling: null, exporter: 'otlp' }, 'back to the environment');
    const back = await placeOrder(gw, u.auth, [{ productId: 'p-0001', quantity: 1 }]);
    assert.equal(flagsOf(back.headers.get('traceparent')), '01', 'always_on from the environment again');
  });
});

describe('metrics', () => {
  test('every process serves /metrics with Istio names and labels; the control plane lists them for Prometheus', async () => {
    const targets = (await http<Array<{ targets: string[]; labels: Record<string, string> }>>(`${sys.controlUrl}/api/prometheus/targets`)).body;
    const services = new Set(targets.map((t) => t.labels.service));
    for (const s of ['control-plane', 'gateway', 'order', 'inventory', 'payment', 'points', 'user', 'recommendation']) assert.ok(services.has(s), s);
    const order = targets.find((t) => t.labels.service === 'order')!;
    const text = (await http<string>(`http://${order.targets[0]}/metrics`)).text;
    assert.match(text, /istio_requests_total\{[^}]*reporter="destination"[^}]*destination_service="order\.default\.svc\.cluster\.local"/);
    assert.match(text, /istio_requests_total\{[^}]*reporter="source"[^}]*destination_service_name="inventory"[^}]*response_code="20\d"/);
    assert.match(text, /istio_request_duration_milliseconds_bucket\{[^}]*le="/);
    assert.match(text, /concord_saga_outcomes_total\{[^}]*type="place-order"[^}]*status="COMPLETED"/);
    assert.match(text, /nodejs_eventloop_lag_seconds/);
  });

  const hasOrderRate = (series: unknown[] | undefined) => (series as Array<{ metric: Record<string, string> }> | undefined)?.some((s) => s.metric.destination_service === 'order.default.svc.cluster.local') === true;

  test('a real Prometheus scrapes through the service discovery endpoint and answers the guide\'s three queries', async (t) => {
    const bin = await installPrometheus();
    if (!bin) {
      t.skip('prometheus is not installed and could not be installed (apt-get install -y prometheus); skipping the real-Prometheus check');
      return;
    }
    const dir = join(outputDir('observability'), 'prometheus');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const port = await freePort();
    writeFileSync(
      join(dir, 'prometheus.yml'),
      `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: concord\n    http_sd_configs:\n      - url: ${sys.controlUrl}/api/prometheus/targets\n        refresh_interval: 2s\n`,
    );
    const prom: ChildProcess = spawn(bin, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let promLog = '';
    prom.stderr?.on('data', (d) => (promLog = (promLog + d).slice(-4000)));
    try {
      const api = `http://127.0.0.1:${port}/api/v1`;
      await pollUntil('prometheus ready', async () => (await http(`http://127.0.0.1:${port}/-/ready`)).status === 200, 30_000, 250);
      // Some 5xx traffic for the error-ratio query: a VirtualService injects aborts.
      const vs = 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: recommendation-faults\nspec:\n  hosts: [recommendation]\n  http:\n    - fault:\n        abort:\n          httpStatus: 503\n          percentage:\n            value: 50\n      route:\n        - destination:\n            host: recommendation\n';
      const applied = await http(`${sys.controlUrl}/api/config`, { method: 'POST', body: vs, headers: { 'content-type': 'application/yaml' } });
      assert.equal(applied.status, 200, applied.text);
      const u = await newUser(gw);
      const deadline = Date.now() + 60_000;
      const queries = {
        rate: 'sum by (destination_service) (rate(istio_requests_total[1m]))',
        p99: 'histogram_quantile(0.99, rate(istio_request_duration_milliseconds_bucket[1m]))',
        errors: 'rate(istio_requests_total{response_code=~"5.."}[1m]) / rate(istio_requests_total[1m])',
      };
      const results: Record<string, unknown[]> = {};
      while (Date.now() < deadline) {
        await placeOrder(gw, u.auth, [{ productId: 'p-0005', quantity: 1 }]);
        for (let i = 0; i < 5; i++) await http(`${gw}/api/recommendations`);
        let all = true;
        for (const [name, q] of Object.entries(queries)) {
          const r = await http<{ data: { result: Array<{ value: [number, string] }> } }>(`${api}/query?query=${encodeURIComponent(q)}`);
          const series = (r.body?.data?.result ?? []).filter((s) => s.value[1] !== 'NaN');
          results[name] = series;
          if (series.length === 0) all = false;
        }
        // Targets are discovered and scraped one by one: the other services' rates can come
        // before order's (a rate needs two of its scrapes), so the wait goes on until it is there.
        if (all && hasOrderRate(results.rate)) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      for (const name of Object.keys(queries)) assert.ok((results[name] ?? []).length > 0, `${name} returned no series (prometheus log: ${promLog.slice(-500)})`);
      assert.ok(hasOrderRate(results.rate), `no request rate for order after 60 s: ${JSON.stringify(results.rate)}`);
    } finally {
      prom.kill('SIGTERM');
      await http(`${sys.controlUrl}/api/config/VirtualService/recommendation-faults`, { method: 'DELETE' }).catch(() => null);
    }
  });
});

async function installPrometheus(): Promise<string | null> {
  for (const p of ['/usr/bin/prometheus', '/bin/prometheus']) if (existsSync(p)) return p;
  try {
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', '-o', 'DPkg::Lock::Timeout=240', 'prometheus'], { stdio: 'ignore', timeout: 300_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  } catch {
    return null;
  }
  return existsSync('/usr/bin/prometheus') ? '/usr/bin/prometheus' : null;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = netServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}
