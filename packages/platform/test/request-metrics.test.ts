/** istio_requests_total and istio_request_duration_milliseconds: scraped exactly as prom-client's Counter and Histogram give them. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import { DROPPED_METRIC, MAX_REQUEST_SERIES, RequestMetrics } from '../src/telemetry/request-metrics.js';

const LABELS = ['reporter', 'source_workload', 'response_code'] as const;
const BUCKETS = [0.5, 1, 5, 10, 25];
const NAMES = { counter: 'istio_requests_total', counterHelp: 'Requests.', histogram: 'istio_request_duration_milliseconds', histogramHelp: 'Durations.' };

function pair() {
  const reference = new Registry();
  const ours = new Registry();
  for (const r of [reference, ours]) r.setDefaultLabels({ app: 'order', instance_id: 'order-1' });
  const counter = new Counter({ name: NAMES.counter, help: NAMES.counterHelp, labelNames: LABELS, registers: [reference] });
  const histogram = new Histogram({ name: NAMES.histogram, help: NAMES.histogramHelp, labelNames: LABELS, buckets: BUCKETS, registers: [reference] });
  const metrics = new RequestMetrics(ours, NAMES, LABELS, BUCKETS);
  return {
    reference,
    ours,
    metrics,
    observe(labels: Record<(typeof LABELS)[number], string>, ms: number) {
      counter.inc(labels);
      histogram.observe(labels, ms);
      metrics.observe(labels, ms);
    },
  };
}

const json = async (r: Registry) => JSON.parse(JSON.stringify(await r.getMetricsAsJSON()));

test('requests counted by RequestMetrics scrape byte for byte as prom-client counts them, in text and as JSON', async () => {
  const p = pair();
  // Durations below, on and above the bounds (above the last: only +Inf), and label values the
  // text format must escape, or that would run together without their lengths.
  const durations = [0, 0.25, 0.5, 0.75, 1, 4.2, 5, 10, 24.9, 25, 26, 1e6, 3];
  const sources = ['gateway', 'with "quotes"', 'back\\slash', 'new\nline', 'a', '3:a', ''];
  let i = 0;
  for (const ms of durations) {
    for (const source of sources) {
      p.observe({ reporter: i % 2 ? 'source' : 'destination', source_workload: source, response_code: String(200 + (i % 3)) }, ms);
      i++;
    }
  }
  // Ours also exposes its dropped count (see the next test): left out of the comparison.
  const withoutDropped = async (r: Registry) =>
    (await r.metrics())
      .split('\n\n')
      .filter((family) => !family.includes(DROPPED_METRIC))
      .join('\n\n')
      .trimEnd();
  assert.equal(await withoutDropped(p.ours), await withoutDropped(p.reference));
  assert.deepEqual(
    (await json(p.ours)).filter((m: { name: string }) => m.name !== DROPPED_METRIC),
    await json(p.reference),
  );
});

test('label sets past MAX_REQUEST_SERIES are dropped and counted, and the kept ones still count', async () => {
  const reg = new Registry();
  const m = new RequestMetrics(reg, NAMES, LABELS, BUCKETS);
  for (let i = 0; i < MAX_REQUEST_SERIES + 5; i++) m.observe({ reporter: 'source', source_workload: `w${i}`, response_code: '200' }, 1);
  m.observe({ reporter: 'source', source_workload: 'w0', response_code: '200' }, 1);
  assert.equal(m.dropped, 5);
  const counter = (await reg.getMetricsAsJSON()).find((x) => x.name === NAMES.counter);
  assert.equal(counter?.values.length, MAX_REQUEST_SERIES);
  assert.equal(counter?.values[0]?.value, 2);
  assert.match(await reg.metrics(), new RegExp(`\\n${DROPPED_METRIC} 5\\n`));
});

test('a duration that is not a finite number is refused, as prom-client refuses it', () => {
  const m = new RequestMetrics(new Registry(), NAMES, LABELS, BUCKETS);
  assert.throws(() => m.observe({ reporter: 'source', source_workload: 'w', response_code: '200' }, Number.NaN), TypeError);
});
