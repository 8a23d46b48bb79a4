/** Node.js runtime metrics: prom-client's defaults by name, with the event-loop delay sampled less often and read as a delay. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { loadConfig } from '../src/service-kit/config.js';
import { kitSchema } from '../src/service-kit/server.js';
import { EVENT_LOOP_RESOLUTION_MS, Metrics } from '../src/telemetry/metrics.js';

const names = async (r: Registry, prefix: RegExp) =>
  (await r.getMetricsAsJSON())
    .map((m) => m.name)
    .filter((n) => prefix.test(n))
    .sort();

/** One scraped value of a metric without labels of its own. */
function scraped(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`));
  assert.ok(line, `${name} is exposed`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('every process exposes each metric prom-client collectDefaultMetrics would, under the same name', async () => {
  const stock = new Registry();
  collectDefaultMetrics({ register: stock });
  const ours = new Metrics({ service: 'x', version: 'v1', instance: 'x-1' });
  const runtime = /^(nodejs|process)_/;
  assert.deepEqual(await names(ours.registry, runtime), await names(stock, runtime));
});

test('the event-loop delay reads what the loop was late past the sampling period: near 0 while idle, the length of a block after one', async () => {
  const resolutionMs = 20;
  const m = new Metrics({ service: 'x', version: 'v1', instance: 'x-1', eventLoopResolutionMs: resolutionMs });
  // Samples of an idle loop (a timer-driven sampler: time has to pass), then a 150 ms block,
  // then one timer turn, after which the overdue sample has been taken.
  await new Promise((r) => setTimeout(r, 10 * resolutionMs));
  const blockedAt = performance.now();
  while (performance.now() - blockedAt < 150) {
    /* the loop is blocked */
  }
  await new Promise((r) => setTimeout(r, resolutionMs + 5));
  const text = await m.registry.metrics();
  // Node's histogram holds the intervals between samples (prom-client reports those: an idle
  // loop's minimum reads the period, 0.020 here); less the period, an on-time sample reads ~0.
  assert.ok(scraped(text, 'nodejs_eventloop_lag_min_seconds') < resolutionMs / 2 / 1000, text);
  assert.ok(scraped(text, 'nodejs_eventloop_lag_max_seconds') >= 0.1, text);
});

test('CONCORD_EVENT_LOOP_RESOLUTION sets the sampling period, 100 ms unless given; a bad one stops start-up naming it', () => {
  assert.equal(EVENT_LOOP_RESOLUTION_MS, 100);
  assert.equal(loadConfig(kitSchema, {}).eventLoopResolutionMs, 100);
  assert.equal(loadConfig(kitSchema, { CONCORD_EVENT_LOOP_RESOLUTION: '10ms' }).eventLoopResolutionMs, 10);
  for (const bad of ['0', '0.5ms', 'often', '1m']) {
    assert.throws(() => loadConfig(kitSchema, { CONCORD_EVENT_LOOP_RESOLUTION: bad }), /CONCORD_EVENT_LOOP_RESOLUTION=.* is invalid/);
  }
});
