/**
 * The control plane's trace store: spans come back exactly as they went in, whole traces go when
 * a bound is passed (oldest first), and the byte ring survives growth, wrapping and evictions in
 * any order, checked against a model of what must still be there.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { mulberry32 } from '@concord/core';
import { encodeStored } from '../src/traces/otlp-proto.js';
import { type StoredSpan, TraceStore, type TraceLimits } from '../src/traces/store.js';

const T0_NS = 1_790_000_000_000_000_000n;

const hex = (n: number, digits: number): string => n.toString(16).padStart(digits, '0').slice(-digits);
const traceIdOf = (n: number): string => `${hex(n, 8)}${'0'.repeat(16)}${hex(n * 7 + 1, 8)}`;

function span(trace: number, n: number, over: Partial<StoredSpan> = {}): StoredSpan {
  const start = T0_NS + BigInt(trace) * 1_000_000n + BigInt(n) * 1000n;
  return {
    traceId: traceIdOf(trace),
    spanId: hex(trace * 1000 + n + 1, 16),
    parentSpanId: n === 0 ? null : hex(trace * 1000 + 1, 16),
    service: 'order',
    instance: 'order-1',
    name: `step ${n}`,
    kind: n === 0 ? 'SERVER' : 'INTERNAL',
    startTimeUnixNano: start.toString(),
    endTimeUnixNano: (start + 500_000n).toString(),
    status: 'UNSET',
    attributes: { 'concord.n': n },
    ...over,
  };
}

const limits = (over: Partial<TraceLimits>): TraceLimits => ({ maxTraces: 1000, maxSpans: 10_000, maxBytes: 1_048_576, maxSpansPerTrace: 100, retentionMs: 3_600_000, ...over });

describe('the trace store', () => {
  test('a span reads back exactly as it was stored: ids, times to the nanosecond, kind, status, attributes of every type', () => {
    const store = new TraceStore();
    const spans = [
      span(1, 0, { attributes: { 'http.route': '/api/orders', 'http.response.status_code': 201, 'concord.ratio': 0.25, 'concord.retry': false, 'concord.offset': -3, 'concord.big': 1e20, 'concord.int64': 2 ** 62, 'ünïcode.key': 'välue ✓' } }),
      span(1, 1, { status: 'ERROR', statusMessage: 'disk I/O error', service: 'payment', instance: 'payment-2', kind: 'CLIENT' }),
      span(1, 2, { status: 'OK', endTimeUnixNano: '18446744073709551615' }),
    ];
    store.add(spans, 0);
    assert.deepEqual(store.get(traceIdOf(1)), { traceId: traceIdOf(1), spans });
    assert.equal(store.get(traceIdOf(2)), null);
    assert.equal(store.get('not hex'), null);
    assert.equal(store.spans, 3);
    assert.equal(store.size, 1);
    assert.equal(store.bytes, encodeStored(spans).buf.length, 'the store counts the spans’ encoded bytes');
    // OTLP/JSON allows 20 digits; a time past 2⁶⁴ − 1 is kept as 2⁶⁴ − 1, not wrapped around.
    store.add([span(2, 0, { endTimeUnixNano: '99999999999999999999' })], 0);
    assert.equal(store.get(traceIdOf(2))?.spans[0]?.endTimeUnixNano, '18446744073709551615');
  });

  test('search: newest first; by service, status, duration and root name; a continued trace’s root is its earliest span whose parent is elsewhere', () => {
    const store = new TraceStore();
    store.add([span(1, 0), span(1, 1, { service: 'inventory' })], 0);
    store.add([span(2, 0, { status: 'ERROR', name: 'POST /api/orders' }), span(2, 1, { endTimeUnixNano: (T0_NS + 2_000_000n + 80_000_000n).toString() })], 0);
    // Trace 3 arrives continued from outside: its first span's parent is not in the store.
    store.add([span(3, 1, { parentSpanId: 'ffffffffffffffff', name: 'GET /elsewhere', service: 'gateway' }), span(3, 2)], 0);
    const all = store.search({ limit: 10 });
    assert.deepEqual(
      all.map((t) => t.traceId),
      [3, 2, 1].map(traceIdOf),
    );
    const [t3, t2, t1] = all;
    assert.equal(t3?.rootName, 'GET /elsewhere');
    assert.equal(t3?.rootService, 'gateway');
    assert.deepEqual(t1, {
      traceId: traceIdOf(1),
      rootService: 'order',
      rootName: 'step 0',
      startTimeUnixNano: (T0_NS + 1_000_000n).toString(),
      durationMs: 0.501,
      spanCount: 2,
      services: ['inventory', 'order'],
      status: 'OK',
    });
    assert.equal(t2?.status, 'ERROR');
    assert.equal(t2?.durationMs, 80);
    assert.deepEqual(store.search({ limit: 10, service: 'inventory' }).map((t) => t.traceId), [traceIdOf(1)]);
    assert.deepEqual(store.search({ limit: 10, status: 'ERROR' }).map((t) => t.traceId), [traceIdOf(2)]);
    assert.deepEqual(store.search({ limit: 10, status: 'OK' }).map((t) => t.traceId), [traceIdOf(3), traceIdOf(1)]);
    assert.deepEqual(store.search({ limit: 10, minDurationMs: 50 }).map((t) => t.traceId), [traceIdOf(2)]);
    assert.deepEqual(store.search({ limit: 10, maxDurationMs: 50 }).map((t) => t.traceId), [traceIdOf(3), traceIdOf(1)]);
    assert.deepEqual(store.search({ limit: 10, name: 'orders' }).map((t) => t.traceId), [traceIdOf(2)]);
    assert.deepEqual(store.search({ limit: 1 }).map((t) => t.traceId), [traceIdOf(3)]);
  });

  test('bounds: the oldest whole traces go when traces, spans or age pass their bound; a trace past its span bound drops the rest, counted', () => {
    const byTraces = new TraceStore(limits({ maxTraces: 3 }));
    for (let t = 1; t <= 5; t++) byTraces.add([span(t, 0), span(t, 1)], 0);
    assert.deepEqual(byTraces.search({ limit: 10 }).map((t) => t.traceId), [5, 4, 3].map(traceIdOf));
    assert.equal(byTraces.spans, 6);

    const bySpans = new TraceStore(limits({ maxSpans: 5 }));
    for (let t = 1; t <= 4; t++) bySpans.add([span(t, 0), span(t, 1)], 0);
    assert.deepEqual(bySpans.search({ limit: 10 }).map((t) => t.traceId), [4, 3].map(traceIdOf));
    assert.ok(bySpans.spans <= 5);

    const byAge = new TraceStore(limits({ retentionMs: 1000 }));
    byAge.add([span(1, 0)], 0);
    byAge.add([span(2, 0)], 600);
    byAge.add([span(3, 0)], 1500);
    assert.deepEqual(byAge.search({ limit: 10 }).map((t) => t.traceId), [3, 2].map(traceIdOf));

    const perTrace = new TraceStore(limits({ maxSpansPerTrace: 3 }));
    perTrace.add([0, 1, 2, 3, 4].map((n) => span(1, n)), 0);
    assert.equal(perTrace.get(traceIdOf(1))?.spans.length, 3);
    assert.equal(perTrace.dropped, 2);
  });

  test('services past the 64 with a bit of their own are still found and listed', () => {
    const store = new TraceStore();
    for (let t = 0; t < 70; t++) store.add([span(t, 0, { service: `svc-${t}` }), span(t, 1, { service: 'gateway' })], 0);
    for (const t of [0, 63, 64, 69]) {
      const found = store.search({ limit: 100, service: `svc-${t}` });
      assert.deepEqual(
        found.map((x) => x.traceId),
        [traceIdOf(t)],
      );
      assert.deepEqual(found[0]?.services, ['gateway', `svc-${t}`].sort());
    }
    assert.equal(store.search({ limit: 100, service: 'gateway' }).length, 70);
  });

  test('random arrivals (interleaved traces, spans of 40 B to 16 KiB, instances coming and going) against a model: every stored trace is whole and exact; bounds hold; the newest trace stays', () => {
    const random = mulberry32(20261127);
    const bounds = limits({ maxTraces: 2000, maxSpans: 20_000, maxBytes: 1.5 * 1_048_576, maxSpansPerTrace: 40 });
    let mostBytes = 0;
    let leastBytesLater = Number.POSITIVE_INFINITY;
    const store = new TraceStore(bounds);
    /** What each trace must hold, when the store still has it. */
    const model = new Map<number, StoredSpan[]>();
    const open: number[] = [];
    let nextTrace = 1;
    let nextSpan = 0;
    let newest = 0;
    for (let step = 0; step < 8000; step++) {
      // Mostly recent traces get more spans; sometimes an old one (its earlier spans may be gone).
      if (open.length === 0 || random() < 0.3) {
        open.push(nextTrace++);
        if (open.length > 50) open.shift();
      }
      const trace = random() < 0.9 ? (open[open.length - 1 - Math.floor(random() * Math.min(5, open.length))] as number) : Math.floor(random() * nextTrace) + 1;
      // Big spans are many attributes: a stored string value keeps at most 1000 characters.
      const attributes: Record<string, string> = {};
      const pads = random() < 0.15 ? 1 + Math.floor(random() * 16) : 1;
      for (let k = 0; k < pads; k++) attributes[`pad.${k}`] = 'x'.repeat(Math.floor(random() * (pads > 1 ? 1000 : 300)));
      const s = span(trace, nextSpan++ % 1000, {
        instance: `order-${Math.floor(random() * 20)}`,
        service: random() < 0.5 ? 'order' : 'inventory',
        attributes,
        status: random() < 0.1 ? 'ERROR' : 'UNSET',
      });
      const before = store.get(traceIdOf(trace))?.spans.length ?? 0;
      store.add([s], step);
      const got = store.get(traceIdOf(trace));
      assert.ok(got, 'the trace just written to is stored');
      const expected = before === 0 || got.spans.length === 1 ? [] : [...(model.get(trace) ?? [])];
      if (before < bounds.maxSpansPerTrace) expected.push(s);
      const sort = (x: StoredSpan[]) => [...x].sort((a, b) => (BigInt(a.startTimeUnixNano) < BigInt(b.startTimeUnixNano) ? -1 : 1));
      assert.deepEqual(got.spans.map((x) => x.spanId).sort(), expected.map((x) => x.spanId).sort(), `trace ${trace} at step ${step}`);
      model.set(trace, sort(expected));
      if (before === 0 || got.spans.length === 1) newest = trace;
      assert.ok(store.get(traceIdOf(newest)), 'the newest trace is never the one evicted');
      assert.ok(store.spans <= bounds.maxSpans && store.size <= bounds.maxTraces && store.bytes <= bounds.maxBytes, `bounds at step ${step}`);
      mostBytes = Math.max(mostBytes, store.bytes);
      if (step >= 4000) leastBytesLater = Math.min(leastBytesLater, store.bytes);
      // A few other traces: gone, or exactly what the model holds.
      for (let k = 0; k < 3; k++) {
        const other = Math.floor(random() * nextTrace) + 1;
        const o = store.get(traceIdOf(other));
        if (!o) model.delete(other);
        else assert.deepEqual(o.spans, model.get(other), `trace ${other} at step ${step}`);
      }
    }
    // At the end, everything: the counts add up and each trace is exact.
    let spans = 0;
    let traces = 0;
    for (let t = 1; t < nextTrace; t++) {
      const got = store.get(traceIdOf(t));
      if (!got) continue;
      traces++;
      spans += got.spans.length;
      assert.deepEqual(got.spans, model.get(t));
    }
    assert.equal(store.size, traces);
    assert.equal(store.spans, spans);
    assert.equal(store.search({ limit: 100_000 }).length, traces);
    assert.ok(traces > 20, `${traces} traces kept`);
    // Once full, the ring evicts only what a new span needs: it stays near its bound, never emptying itself.
    assert.ok(leastBytesLater > 0.75 * bounds.maxBytes, `at least ${leastBytesLater} bytes held once full`);
    assert.ok(mostBytes > 1.2 * 1_048_576, `the arena grew past its first MiB (${mostBytes} bytes held at most)`);
  });

  for (const bound of ['spans', 'bytes'] as const) {
    test(`traces whose spans interleave all over the ring (bound by ${bound}): evicting the oldest leaves holes everywhere, compaction gives them back, and the store stays near its bound with every trace exact`, () => {
      // Twelve traces in turn, each a long while: when the oldest goes, its spans are holes all
      // over the ring. Without compaction the next span would evict the next trace, and the next.
      const bounds = bound === 'spans' ? limits({ maxSpans: 300, maxSpansPerTrace: 10_000 }) : limits({ maxBytes: 30_000, maxSpansPerTrace: 10_000 });
      const store = new TraceStore(bounds);
      const model = new Map<number, string[]>();
      let least = Number.POSITIVE_INFINITY;
      const live = [...Array(12).keys()].map((i) => i + 1);
      let nextTrace = 13;
      for (let step = 0; step < 6000; step++) {
        // Now and then the oldest trace is done and a new one starts.
        if (step % 500 === 499) {
          live.shift();
          live.push(nextTrace++);
        }
        const trace = live[step % live.length] as number;
        const s = span(trace, step % 1000, { attributes: { pad: 'y'.repeat(step % 60) } });
        store.add([s], 0);
        const got = store.get(traceIdOf(trace));
        assert.ok(got);
        const ids = got.spans.map((x) => x.spanId);
        const expected = ids.length === 1 ? [s.spanId] : [...(model.get(trace) ?? []), s.spanId];
        assert.deepEqual([...ids].sort(), [...expected].sort(), `trace ${trace} at step ${step}`);
        model.set(trace, expected);
        if (step >= 1000) least = Math.min(least, bound === 'spans' ? store.spans / bounds.maxSpans : store.bytes / bounds.maxBytes);
        assert.ok(store.spans <= bounds.maxSpans && store.bytes <= bounds.maxBytes, `bounds at step ${step}`);
      }
      for (const [trace, ids] of model) {
        const got = store.get(traceIdOf(trace));
        if (got) assert.deepEqual(got.spans.map((x) => x.spanId).sort(), [...ids].sort(), `trace ${trace} at the end`);
      }
      assert.ok(least > 0.75, `the store held at least ${(least * 100).toFixed(0)} % of its bound once full`);
    });
  }
});
