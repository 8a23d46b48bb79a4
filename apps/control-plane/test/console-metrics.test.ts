/**
 * The console's pure metrics core: the Prometheus text parser, what a scrape keeps, counter
 * increments across scrapes and restarts, rates, error shares and histogram_quantile.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Metrics } from '@concord/platform';
import { parsePromText, parseValue } from '../src/console/prom-text.js';
import { EXTERNAL, isErrorCode, summarizeScrape } from '../src/console/scrape.js';
import { TrafficModel, counterIncrease, histogramQuantile } from '../src/console/traffic.js';

const all = () => true;

describe('Prometheus text parser', () => {
  test('reads names, labels with escapes, special values, and skips comments and timestamps', () => {
    const text = [
      '# HELP x_total Something.',
      '# TYPE x_total counter',
      'x_total{a="1",b="with \\"quotes\\" and \\\\ and \\n"} 3 1700000000000',
      'y 4.5e2',
      '  z{le="+Inf",} +Inf',
      'nan_metric NaN',
      'neg -Inf',
      'empty_labels{} 1',
      '',
    ].join('\n');
    const r = parsePromText(text, all);
    assert.equal(r.malformed, 0);
    assert.deepEqual(
      r.samples.map((s) => [s.name, s.labels, s.value]),
      [
        ['x_total', { a: '1', b: 'with "quotes" and \\ and \n' }, 3],
        ['y', {}, 450],
        ['z', { le: '+Inf' }, Number.POSITIVE_INFINITY],
        ['nan_metric', {}, Number.NaN],
        ['neg', {}, Number.NEGATIVE_INFINITY],
        ['empty_labels', {}, 1],
      ],
    );
  });

  test('counts malformed sample lines instead of throwing, and keeps the good ones', () => {
    const text = ['ok 1', 'bad{a="1" 2', 'bad2{a=1} 2', 'bad3 abc', 'bad4{a="x\\q"} 1', 'bad5{a="1"}2', 'ok2{a="2"} 2', 'ok3 1\r'].join('\n');
    const r = parsePromText(text, all);
    assert.deepEqual(
      r.samples.map((s) => s.name),
      ['ok', 'ok2', 'ok3'],
    );
    assert.equal(r.malformed, 5);
  });

  test('families the caller does not keep are skipped before their labels are read', () => {
    const r = parsePromText('skip{this is not even valid\nkeep 1\n', (n) => n === 'keep');
    assert.equal(r.malformed, 0);
    assert.deepEqual(
      r.samples.map((s) => s.name),
      ['keep'],
    );
  });

  test('stops at maxSamples and says so', () => {
    const r = parsePromText('a 1\nb 2\nc 3\n', all, 2);
    assert.equal(r.samples.length, 2);
    assert.equal(r.truncated, true);
  });

  test('parseValue accepts Prometheus floats and refuses the rest', () => {
    assert.equal(parseValue('1'), 1);
    assert.equal(parseValue('-0.5'), -0.5);
    assert.equal(parseValue('.5'), 0.5);
    assert.equal(parseValue('1e3'), 1000);
    assert.equal(parseValue('0x10'), null);
    assert.equal(parseValue(''), null);
    assert.equal(parseValue('1,0'), null);
  });
});

function labels(reporter: 'source' | 'destination', source: string, destination: string, code: string) {
  return {
    reporter,
    source_workload: source,
    source_version: 'v1',
    source_principal: 'unknown',
    destination_workload: destination,
    destination_service: `${destination}.default.svc.cluster.local`,
    destination_service_name: destination,
    destination_version: 'v1',
    destination_principal: 'unknown',
    request_protocol: 'http',
    response_code: code,
    response_flags: '-',
    connection_security_policy: 'unknown',
  };
}

describe('what a scrape keeps', () => {
  test('the real exposition of a process: requests by edge and code, buckets, breakers, ejections, memory', async () => {
    const m = new Metrics({ service: 'gateway', version: 'v1', instance: 'gateway-1' });
    m.observeRequest(labels('source', 'gateway', 'order', '201'), 12);
    m.observeRequest(labels('source', 'gateway', 'order', '201'), 30);
    m.observeRequest(labels('source', 'gateway', 'order', '503'), 3);
    m.observeRequest(labels('destination', 'unknown', 'gateway', '201'), 40);
    m.breakerState.set({ destination_service: 'order.default.svc.cluster.local' }, 2);
    m.ejected.set({ destination_service: 'order.default.svc.cluster.local' }, 1);
    m.ejections.inc({ destination_service: 'order.default.svc.cluster.local', endpoint: 'order-2' });
    const s = summarizeScrape(await m.registry.metrics());
    assert.equal(s.malformed, 0);
    assert.equal(s.requests.get('source|gateway|order|201'), 2);
    assert.equal(s.requests.get('source|gateway|order|503'), 1);
    assert.equal(s.requests.get(`destination|${EXTERNAL}|gateway|201`), 1, 'an unknown source is the external client');
    const b = s.buckets.get('source|gateway|order');
    assert.ok(b);
    assert.equal(b.get(Number.POSITIVE_INFINITY), 3, 'bucket counts are summed over response codes');
    assert.equal(b.get(5), 1);
    assert.equal(b.get(25), 2);
    assert.deepEqual(s.breakers, [{ destination: 'order', state: 2 }]);
    assert.deepEqual(s.ejected, [{ destination: 'order', count: 1 }]);
    assert.equal(s.ejections.get('order|order-2'), 1);
    assert.ok(s.rssBytes && s.rssBytes > 0);
    assert.ok(s.startTimeS && s.startTimeS > 1_600_000_000);
  });

  test('errors are 5xx answers and no answer at all (0)', () => {
    assert.equal(isErrorCode('500'), true);
    assert.equal(isErrorCode('503'), true);
    assert.equal(isErrorCode('0'), true);
    assert.equal(isErrorCode('404'), false);
    assert.equal(isErrorCode('429'), false);
    assert.equal(isErrorCode('200'), false);
  });
});

describe('histogram_quantile', () => {
  const inf = Number.POSITIVE_INFINITY;
  test('interpolates linearly inside the bucket holding the rank, as Prometheus does', () => {
    // 100 observations: 50 ≤ 10 ms, 90 ≤ 100 ms, all ≤ 1000 ms.
    const b = new Map([
      [10, 50],
      [100, 90],
      [1000, 100],
      [inf, 100],
    ]);
    assert.equal(histogramQuantile(0.5, b), 10);
    assert.equal(histogramQuantile(0.9, b), 100);
    assert.equal(histogramQuantile(0.99, b), 100 + 900 * (9 / 10));
    assert.equal(histogramQuantile(0.25, b), 5, 'the first bucket starts at 0');
    assert.equal(histogramQuantile(0.7, b), 10 + 90 * (20 / 40));
  });

  test('a rank in the +Inf bucket answers the highest finite bound; no observations answer null', () => {
    assert.equal(
      histogramQuantile(
        0.99,
        new Map([
          [10, 1],
          [inf, 10],
        ]),
      ),
      10,
    );
    assert.equal(
      histogramQuantile(
        0.99,
        new Map([
          [10, 0],
          [inf, 0],
        ]),
      ),
      null,
    );
    assert.equal(histogramQuantile(0.99, new Map([[10, 5]])), null, 'without +Inf there is no total');
    assert.throws(() => histogramQuantile(1.5, new Map()), RangeError);
  });

  test('non-monotonic counts (increments summed over instances) are made monotonic first', () => {
    const b = new Map([
      [10, 5],
      [100, 4],
      [inf, 10],
    ]);
    const q = histogramQuantile(0.5, b);
    assert.equal(q, 10);
  });
});

describe('counter increments', () => {
  test('a decrease is a restart: the new value is the increment', () => {
    assert.equal(counterIncrease(10, 15), 5);
    assert.equal(counterIncrease(10, 3), 3);
    assert.equal(counterIncrease(undefined, 7), 7);
  });
});

/** A scrape holding `n` requests of one edge, each taking `ms`, plus what the destination answered. */
function scrapeOf(edges: Array<{ source: string; destination: string; code: string; n: number; ms: number }>, startTimeS = 1000) {
  const m = new Metrics({ service: 'x', version: 'v1', instance: 'x-1' });
  for (const e of edges) {
    for (let i = 0; i < e.n; i++) m.observeRequest(labels('source', e.source, e.destination, e.code), e.ms);
  }
  return m.registry.metrics().then((text) => ({ ...summarizeScrape(text), startTimeS }));
}

describe('traffic model', () => {
  test('rate, error share and p99 of an edge come from increments between scrapes', async () => {
    const model = new TrafficModel({ capacity: 300, maxKeys: 100, maxInstances: 10, intervalMs: 2000 });
    // First scrape of an instance that was running before: a baseline, nothing counted.
    model.record(0, [
      {
        instanceId: 'gw',
        service: 'gateway',
        fromZero: false,
        scrape: await scrapeOf([{ source: 'gateway', destination: 'order', code: '201', n: 5, ms: 20 }]),
      },
    ]);
    assert.deepEqual(model.edges(60_000), []);
    // 2 s later: 20 more requests, 2 of them 503, all within 5 ms except the failures.
    const next = await scrapeOf([
      { source: 'gateway', destination: 'order', code: '201', n: 5 + 18, ms: 20 },
      { source: 'gateway', destination: 'order', code: '503', n: 2, ms: 800 },
    ]);
    model.record(2000, [{ instanceId: 'gw', service: 'gateway', fromZero: false, scrape: next }]);
    const [edge] = model.edges(60_000);
    assert.ok(edge);
    assert.equal(edge.source, 'gateway');
    assert.equal(edge.destination, 'order');
    assert.equal(edge.requests, 20);
    assert.equal(edge.rate, 10);
    assert.equal(edge.errorRate, 0.1);
    // 18 in (10, 25], 2 in (500, 1000]: the 99th percentile (rank 19.8) is in the slow bucket.
    assert.ok(edge.p99Ms !== null && edge.p99Ms > 500 && edge.p99Ms <= 1000, String(edge.p99Ms));
  });

  test('an instance that started after the model began counts from zero; a restarted process too', async () => {
    const model = new TrafficModel({ capacity: 300, maxKeys: 100, maxInstances: 10, intervalMs: 2000 });
    model.record(0, [
      { instanceId: 'o', service: 'order', fromZero: true, scrape: await scrapeOf([{ source: 'order', destination: 'payment', code: '200', n: 4, ms: 3 }]) },
    ]);
    assert.equal(model.edges(60_000)[0]?.requests, 4);
    // Same instance id, new process (start time moved), counters back at 3: all 3 are new.
    model.record(2000, [
      {
        instanceId: 'o',
        service: 'order',
        fromZero: false,
        scrape: await scrapeOf([{ source: 'order', destination: 'payment', code: '200', n: 3, ms: 3 }], 2000),
      },
    ]);
    assert.equal(model.edges(60_000)[0]?.requests, 7);
    assert.equal(model.edges(1000)[0]?.requests, 3, 'the window holds only the last tick');
  });

  test('a failed scrape keeps the previous values; a vanished instance is forgotten', async () => {
    const model = new TrafficModel({ capacity: 300, maxKeys: 100, maxInstances: 10, intervalMs: 2000 });
    const a = await scrapeOf([{ source: 'gateway', destination: 'user', code: '200', n: 2, ms: 1 }]);
    model.record(0, [{ instanceId: 'gw', service: 'gateway', fromZero: false, scrape: a }]);
    model.record(2000, [{ instanceId: 'gw', service: 'gateway', fromZero: false, scrape: null, error: 'timed out' }]);
    assert.equal(model.instanceStates()[0]?.error, 'timed out');
    const b = await scrapeOf([{ source: 'gateway', destination: 'user', code: '200', n: 6, ms: 1 }]);
    model.record(4000, [{ instanceId: 'gw', service: 'gateway', fromZero: false, scrape: b }]);
    assert.equal(model.edges(60_000)[0]?.requests, 4, 'the increment spans the failed round');
    model.record(6000, []);
    assert.deepEqual(model.instanceStates(), []);
  });

  test('series give one point per tick with rate, errors and p99; the ring is bounded', async () => {
    const model = new TrafficModel({ capacity: 5, maxKeys: 100, maxInstances: 10, intervalMs: 2000 });
    const m = new Metrics({ service: 'order', version: 'v1', instance: 'o' });
    for (let t = 0; t < 8; t++) {
      for (let i = 0; i < t; i++) m.observeRequest(labels('destination', 'gateway', 'order', i === 0 ? '500' : '201'), 7);
      model.record(t * 2000, [{ instanceId: 'o', service: 'order', fromZero: true, scrape: summarizeScrape(await m.registry.metrics()) }]);
    }
    assert.equal(model.tickCount, 5);
    const points = model.series(600_000, 'order').get('order');
    assert.ok(points);
    assert.equal(points.length, 5);
    const last = points.at(-1)!;
    assert.equal(last.t, 14_000);
    assert.equal(last.rate, 7 / 2);
    assert.equal(last.errors, 1 / 2);
    assert.equal(last.errorRate, 1 / 7);
    assert.ok(last.p99Ms !== null && last.p99Ms > 5 && last.p99Ms <= 10);
    assert.deepEqual(
      model
        .series(600_000, 'nobody')
        .get('nobody')
        ?.map((p) => p.rate),
      [0, 0, 0, 0, 0],
    );
  });

  test('new keys beyond maxKeys are dropped and counted, not stored', async () => {
    const model = new TrafficModel({ capacity: 10, maxKeys: 2, maxInstances: 10, intervalMs: 2000 });
    const s = await scrapeOf(['a', 'b', 'c', 'd'].map((d) => ({ source: 'gateway', destination: d, code: '200', n: 1, ms: 1 })));
    model.record(0, [{ instanceId: 'gw', service: 'gateway', fromZero: true, scrape: s }]);
    assert.equal(model.edges(60_000).length, 2);
    assert.ok(model.droppedKeys > 0);
  });
});
