/**
 * The instruments of the load/chaos issue, run as a user would: `concord bench` (10 s, then the
 * audit) and `concord chaos` (60 s with three kill -9, then the audit) must both pass; the bench's
 * HTML report opens in a real browser and shows its plots.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { outputDir, runCli } from './harness.js';

const CHROMIUM = '/usr/bin/chromium';

test('a 10 s `concord bench` places orders, writes JSON and HTML reports, and its audit passes; the report shows its plots in a browser', async (t) => {
  const dir = outputDir('bench');
  const r = await runCli(['bench', '--duration', '10s', '--connections', '16', '--out', dir], 240_000);
  assert.equal(r.code, 0, r.out.slice(-3000));
  assert.match(r.out, /audit passed/);
  assert.match(r.out, /acknowledged \(201\/202\)\s+[1-9]\d*/);
  const html = /report: (\S+\.html)/.exec(r.out)?.[1];
  assert.ok(html && existsSync(html), 'the HTML report exists');
  assert.ok(existsSync(html.replace(/\.html$/, '.json')), 'the JSON report exists');
  // Where an order's CPU goes: every service of the default topology, read from its metrics.
  const report = JSON.parse(readFileSync(html.replace(/\.html$/, '.json'), 'utf8')) as { load: { acknowledged: number }; cpu: { orders: number; totalUs: number; byService: Array<{ service: string; us: number }>; generatorUs: number } | null };
  assert.ok(report.cpu, 'the report has CPU per order');
  assert.equal(report.cpu.orders, report.load.acknowledged);
  assert.deepEqual(report.cpu.byService.map((c) => c.service).sort(), ['control-plane', 'gateway', 'inventory', 'order', 'payment', 'points', 'recommendation', 'user']);
  for (const c of report.cpu.byService) assert.ok(c.us >= 0 && Number.isFinite(c.us), `${c.service}: ${c.us}`);
  for (const busy of ['gateway', 'order', 'inventory', 'payment']) assert.ok((report.cpu.byService.find((c) => c.service === busy)?.us ?? 0) > 0, `${busy} used CPU for the orders`);
  assert.ok(Math.abs(report.cpu.totalUs - report.cpu.byService.reduce((a, c) => a + c.us, 0)) < 1e-6 * report.cpu.totalUs + 1e-9);
  assert.ok(report.cpu.generatorUs > 0);
  assert.match(r.out, /CPU per order\s+[\d,]+ µs in the system/);
  if (!existsSync(CHROMIUM)) {
    t.diagnostic(`${CHROMIUM} is missing (apt-get install -y chromium); the browser check of the report is skipped`);
    return;
  }
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1000, height: 1400 } });
    await page.goto(`file://${html}`);
    await page.waitForSelector('svg.plot polyline');
    assert.equal(await page.locator('svg.plot').count(), 2, 'throughput and latency plots');
    const points = await page.locator('svg.plot polyline').first().getAttribute('points');
    assert.ok((points ?? '').split(' ').length >= 5, 'the throughput line has a point per second');
    assert.equal(await page.locator('#audit .fail').count(), 0);
    mkdirSync(join(dir, 'screenshots'), { recursive: true });
    await page.screenshot({ path: join(dir, 'screenshots', 'bench-report.png'), fullPage: true });
  } finally {
    await browser.close();
  }
});

test('a 60 s `concord chaos` run with three kill -9 loses no acknowledged order and passes the audit', async () => {
  const dir = outputDir('chaos');
  const r = await runCli(['chaos', '--scenario', 'smoke', '--out', dir], 420_000);
  assert.equal(r.code, 0, r.out.slice(-4000));
  assert.equal((r.out.match(/\+\d+\.\ds kill -9 /g) ?? []).length, 3, 'three kills happened (one timeline line each)');
  assert.match(r.out, /chaos passed/);
  assert.match(r.out, /PASS {2}load: every acknowledged order exists/);
});

test('a `concord chaos` run with three network partitions (one namespace per instance) loses no acknowledged order and passes the audit', async (t) => {
  if (process.platform !== 'linux' || process.getuid?.() !== 0 || !existsSync('/usr/sbin/ip')) {
    t.skip('network partitions need Linux, root and iproute2 (/usr/sbin/ip); run as root to include them');
    return;
  }
  const dir = outputDir('chaos-partitions');
  const r = await runCli(['chaos', '--scenario', 'partitions', '--out', dir], 420_000);
  assert.equal(r.code, 0, r.out.slice(-4000));
  assert.match(r.out, /network lab: bridge \S+ at 10\.213\.\d+\.1\/24/);
  assert.equal((r.out.match(/\+\d+\.\ds partition \S+ for 5000 ms/g) ?? []).length, 3, 'three partitions happened');
  assert.equal((r.out.match(/\+\d+\.\ds healed /g) ?? []).length, 3, 'and each was healed');
  assert.match(r.out, /chaos passed/);
  assert.match(r.out, /PASS {2}load: every acknowledged order exists/);
});
