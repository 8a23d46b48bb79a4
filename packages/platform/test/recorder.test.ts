/**
 * The lean tracer (recorder.ts) against the SDK's own Tracer: the same calls give the same
 * finished spans (names, kinds, parents, attributes and their limits, status rules, events,
 * links), the sampler decides as it does in the SDK, the SDK's processors and OTLP serializer
 * take the spans, and the context chain answers like the API's context.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Context, ROOT_CONTEXT as API_ROOT, type Span, SpanKind, SpanStatusCode, type Tracer, createContextKey, trace } from '@opentelemetry/api';
import { suppressTracing } from '@opentelemetry/core';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  InMemorySpanExporter,
  ParentBasedSampler,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { IdSource, LinkedContext, MAX_ATTRIBUTES_PER_SPAN, MAX_CONTEXT_DEPTH, RecordingTracer, SpanClock, msToHrTime } from '../src/telemetry/recorder.js';

const resource = resourceFromAttributes({ 'service.name': 'order', 'service.instance.id': 'order-1' });
const scope = { name: 'concord', version: '0.1.0' };

function recorder(sampler = new ParentBasedSampler({ root: new AlwaysOnSampler() })) {
  const exporter = new InMemorySpanExporter();
  const tracer = new RecordingTracer({ resource, scope, sampler, processors: [new SimpleSpanProcessor(exporter)] });
  return { tracer, exporter };
}

function sdk(sampler = new ParentBasedSampler({ root: new AlwaysOnSampler() })) {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ resource, sampler, spanProcessors: [new SimpleSpanProcessor(exporter)] });
  return { tracer: provider.getTracer(scope.name, scope.version), exporter };
}

/** The calls of an order's trace, with every rule of the span API exercised once. */
function script(tracer: Tracer, root: Context): void {
  const server = tracer.startSpan(
    'POST /api/orders',
    {
      kind: SpanKind.SERVER,
      attributes: { 'http.request.method': 'POST', 'concord.tags': ['a', 'b'], 'concord.bad': { nested: 1 } as never, 'concord.none': undefined },
    },
    root,
  );
  const ctx = trace.setSpan(root, server);
  const step = tracer.startSpan('saga place-order reserve-stock', { attributes: { 'concord.saga.step': 'reserve-stock' } }, ctx);
  const client = tracer.startSpan(
    'POST inventory',
    { kind: SpanKind.CLIENT, links: [{ context: server.spanContext(), attributes: { why: 'batch' } }] },
    trace.setSpan(ctx, step),
  );
  client.setAttribute('http.response.status_code', 503);
  client.setStatus({ code: SpanStatusCode.ERROR, message: 'upstream 503' });
  client.recordException(Object.assign(new Error('no healthy upstream'), { code: 'UH' }));
  client.recordException(Object.assign(new TypeError('a code of 0 is no code'), { code: 0 }));
  client.recordException('a plain message');
  client.addEvent('retrying', { attempt: 2 });
  client.end();
  step.setStatus({ code: SpanStatusCode.OK });
  step.setStatus({ code: SpanStatusCode.ERROR, message: 'ignored: OK is final' });
  step.updateName('saga place-order reserve-stock (renamed)');
  step.end();
  step.end();
  step.setAttribute('after.end', true);
  step.updateName('after end');
  for (let i = 0; i < MAX_ATTRIBUTES_PER_SPAN + 2; i++) server.setAttribute(`k${i}`, i);
  server.setAttribute('k0', 'replaced, not dropped');
  server.setStatus({ code: SpanStatusCode.UNSET });
  // Past the event and link limits (128 each): the oldest give way and are counted.
  for (let i = 0; i < 130; i++) server.addEvent(`event ${i}`, { i });
  for (let i = 0; i < 130; i++) server.addLink({ context: step.spanContext(), attributes: { i } });
  server.end();
}

/** What a finished span says, less its ids and times (random and clock-read in both). */
function shape(spans: ReadableSpan[]) {
  const names = new Map(spans.map((s) => [s.spanContext().spanId, s.name]));
  return spans.map((s) => ({
    name: s.name,
    kind: s.kind,
    parent: s.parentSpanContext ? names.get(s.parentSpanContext.spanId) : null,
    sameTrace: s.spanContext().traceId === spans[spans.length - 1]?.spanContext().traceId,
    flags: s.spanContext().traceFlags,
    attributes: s.attributes,
    droppedAttributesCount: s.droppedAttributesCount,
    status: s.status,
    // A stack trace names the line that called the script: compared by presence.
    events: s.events.map((e) => {
      const { 'exception.stacktrace': stack, ...attributes } = e.attributes ?? {};
      return {
        name: e.name,
        attributes,
        stack: typeof stack === 'string' && stack.includes(String(attributes['exception.message'])),
        droppedAttributesCount: e.droppedAttributesCount ?? 0,
      };
    }),
    links: s.links.map((l) => ({ spanId: names.get(l.context.spanId), attributes: l.attributes })),
    droppedEventsCount: s.droppedEventsCount,
    droppedLinksCount: s.droppedLinksCount,
    ended: s.ended,
    resource: s.resource.attributes,
    scope: { name: s.instrumentationScope.name, version: s.instrumentationScope.version },
  }));
}

test('the recorder finishes the same spans as the SDK’s tracer for the same calls', () => {
  const ours = recorder();
  const theirs = sdk();
  script(ours.tracer, LinkedContext.ROOT);
  script(theirs.tracer, API_ROOT);
  const got = ours.exporter.getFinishedSpans();
  assert.equal(got.length, 3);
  assert.deepEqual(shape(got), shape(theirs.exporter.getFinishedSpans()));
  const server = got[2] as ReadableSpan;
  assert.equal(server.attributes.k0, 'replaced, not dropped');
  assert.equal(server.droppedAttributesCount, 2 + 2, 'past the limit of 128: k126..k129 dropped (two attributes were set at start)');
});

test('span times: start ≤ end, in nanoseconds since the epoch near the wall clock, and an explicit time is kept', () => {
  const { tracer, exporter } = recorder();
  const before = Date.now();
  const s = tracer.startSpan('timed');
  s.end();
  const explicit = tracer.startSpan('explicit', { startTime: 1_700_000_000_123.5 });
  explicit.end([1_700_000_001, 250]);
  const [a, b] = exporter.getFinishedSpans() as [ReadableSpan, ReadableSpan];
  const ns = (t: [number, number]) => BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]);
  assert.ok(ns(a.startTime) <= ns(a.endTime));
  assert.ok(Math.abs(Number(ns(a.startTime) / 1_000_000n) - before) < 1000);
  assert.deepEqual(b.startTime, [1_700_000_000, 123_500_000]);
  assert.deepEqual(b.endTime, [1_700_000_001, 250]);
  assert.deepEqual(msToHrTime(999.9999999999), [0, 999_999_999], 'rounding never gives a billion nanoseconds');
  const perf = tracer.startSpan('performance.now() time', { startTime: performance.now() });
  perf.end();
  const fromPerf = exporter.getFinishedSpans()[2] as ReadableSpan;
  assert.ok(
    Math.abs(Number(ns(fromPerf.startTime) / 1_000_000n) - Date.now()) < 1000,
    'a number not past performance.now() is read as one, as the SDK reads it',
  );
  const back = tracer.startSpan('clock stepped back', { startTime: 2_000_000_000_000 });
  back.end(1_000_000_000_000);
  const stepped = exporter.getFinishedSpans()[3] as ReadableSpan;
  assert.deepEqual(stepped.endTime, stepped.startTime, 'an end before the start makes an empty span');
});

test('the span clock reads the wall clock again once a second, so spans follow its adjustments', () => {
  let mono = 0;
  let wall = 1_000_000;
  const clock = new SpanClock(
    () => mono,
    () => wall,
  );
  assert.equal(clock.nowMs(), 1_000_000);
  mono = 500;
  wall += 10_000; // stepped forward by 9.5 s
  assert.equal(clock.nowMs(), 1_000_500, 'within the second: the anchor holds');
  mono = 1_000;
  assert.equal(clock.nowMs(), wall, 'after a second: anchored again');
});

test('the sampler decides: a dropped root carries a context but records nothing, and its children follow it', () => {
  const off = recorder(new ParentBasedSampler({ root: new AlwaysOffSampler() }));
  const root = off.tracer.startSpan('root');
  assert.equal(root.isRecording(), false);
  assert.equal(root.spanContext().traceFlags, 0);
  const child = off.tracer.startSpan('child', {}, trace.setSpan(LinkedContext.ROOT, root));
  assert.equal(child.spanContext().traceId, root.spanContext().traceId);
  assert.equal(child.isRecording(), false);
  root.end();
  child.end();
  assert.equal(off.exporter.getFinishedSpans().length, 0);

  const on = recorder();
  const remote = trace.setSpanContext(LinkedContext.ROOT, {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    traceFlags: 1,
    isRemote: true,
  });
  const fromHeaders = on.tracer.startSpan('continued', {}, remote) as Span & ReadableSpan;
  assert.equal(fromHeaders.spanContext().traceId, '0af7651916cd43dd8448eb211c80319c');
  assert.equal(fromHeaders.parentSpanContext?.spanId, 'b7ad6b7169203331');
  const unsampledParent = trace.setSpanContext(LinkedContext.ROOT, {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    traceFlags: 0,
    isRemote: true,
  });
  assert.equal(on.tracer.startSpan('not sampled upstream', {}, unsampledParent).isRecording(), false);
});

test('an invalid parent starts a new trace; root ignores the parent; suppressed tracing gives an invalid span', () => {
  const { tracer } = recorder();
  const bad = trace.setSpanContext(LinkedContext.ROOT, { traceId: '0'.repeat(32), spanId: 'b7ad6b7169203331', traceFlags: 1 });
  const s = tracer.startSpan('fresh', {}, bad) as Span & ReadableSpan;
  assert.notEqual(s.spanContext().traceId, '0'.repeat(32));
  assert.equal(s.parentSpanContext, undefined);
  const parent = tracer.startSpan('parent');
  const rooted = tracer.startSpan('rooted', { root: true }, trace.setSpan(LinkedContext.ROOT, parent)) as Span & ReadableSpan;
  assert.notEqual(rooted.spanContext().traceId, parent.spanContext().traceId);
  assert.equal(rooted.parentSpanContext, undefined);
  const suppressed = tracer.startSpan('suppressed', {}, suppressTracing(LinkedContext.ROOT));
  assert.equal(trace.isSpanContextValid(suppressed.spanContext()), false);
});

test('every processor sees a span start once and end once; the SDK’s OTLP serializer takes the spans', () => {
  const seen: string[] = [];
  const exporter = new InMemorySpanExporter();
  const probe: SpanProcessor = {
    onStart: (s) => seen.push(`start ${(s as unknown as ReadableSpan).name}`),
    onEnd: (s) => seen.push(`end ${s.name}`),
    forceFlush: async () => {},
    shutdown: async () => {},
  };
  const tracer = new RecordingTracer({ resource, scope, sampler: new AlwaysOnSampler(), processors: [probe, new SimpleSpanProcessor(exporter)] });
  const s = tracer.startSpan('once');
  s.end();
  s.end();
  assert.deepEqual(seen, ['start once', 'end once']);
  const bytes = ProtobufTraceSerializer.serializeRequest(exporter.getFinishedSpans());
  assert.ok(bytes && bytes.length > 0);
});

test('onEnding sees the end time set and the span still writable, as in the SDK; onEnd sees it ended', () => {
  const run = (make: (processors: SpanProcessor[]) => Tracer) => {
    const seen: Array<Record<string, unknown>> = [];
    const exporter = new InMemorySpanExporter();
    const probe: SpanProcessor = {
      onStart: () => {},
      onEnding: (s) => {
        const r = s as unknown as ReadableSpan;
        seen.push({ hook: 'onEnding', ended: r.ended, endTimeSet: r.endTime[0] > 0, recording: s.isRecording() });
        s.setAttribute('set.in.onEnding', true);
      },
      onEnd: (s) => seen.push({ hook: 'onEnd', ended: s.ended, endTimeSet: s.endTime[0] > 0 }),
      forceFlush: async () => {},
      shutdown: async () => {},
    };
    make([probe, new SimpleSpanProcessor(exporter)]).startSpan('ending').end();
    return { seen, attributes: exporter.getFinishedSpans()[0]?.attributes };
  };
  const ours = run((processors) => new RecordingTracer({ resource, scope, sampler: new AlwaysOnSampler(), processors }));
  const theirs = run((spanProcessors) => new BasicTracerProvider({ resource, spanProcessors }).getTracer(scope.name));
  assert.deepEqual(ours, theirs);
  assert.deepEqual(ours.seen, [
    { hook: 'onEnding', ended: false, endTimeSet: true, recording: true },
    { hook: 'onEnd', ended: true, endTimeSet: true },
  ]);
  assert.deepEqual(ours.attributes, { 'set.in.onEnding': true });
});

test('ids: hex of 32 and 16 digits, never all zeros, not repeated across many draws', () => {
  const ids = new IdSource();
  const seen = new Set<string>();
  for (let i = 0; i < 5000; i++) {
    const t = ids.traceId();
    const s = ids.spanId();
    assert.match(t, /^[0-9a-f]{32}$/);
    assert.match(s, /^[0-9a-f]{16}$/);
    assert.ok(!/^0+$/.test(t) && !/^0+$/.test(s));
    seen.add(t).add(s);
  }
  assert.equal(seen.size, 10_000);
});

test('the context chain answers like the API’s context: set, shadow, delete, and a long chain is flattened', () => {
  const a = createContextKey('a');
  const b = createContextKey('b');
  const one = LinkedContext.ROOT.setValue(a, 1);
  const two = one.setValue(b, 2).setValue(a, 3);
  assert.equal(one.getValue(a), 1, 'setting a key makes a new context; the old one is unchanged');
  assert.equal(two.getValue(a), 3);
  assert.equal(two.getValue(b), 2);
  const gone = two.deleteValue(a);
  assert.equal(gone.getValue(a), undefined);
  assert.equal(gone.getValue(b), 2);
  assert.equal(LinkedContext.ROOT.deleteValue(a), LinkedContext.ROOT, 'deleting what is not there changes nothing');
  let long: Context = gone;
  const keys = Array.from({ length: 3 }, (_, i) => createContextKey(`k${i}`));
  for (let i = 0; i < MAX_CONTEXT_DEPTH * 10; i++) long = long.setValue(keys[i % 3] as symbol, i);
  const last = (j: number) => MAX_CONTEXT_DEPTH * 10 - 1 - ((MAX_CONTEXT_DEPTH * 10 - 1 - j) % 3);
  for (let j = 0; j < 3; j++) assert.equal(long.getValue(keys[j] as symbol), last(j), `key ${j}: its newest value`);
  assert.equal(long.getValue(b), 2, 'a key set long ago survives flattening');
  assert.equal(long.getValue(a), undefined, 'a deleted key stays deleted');
  let depth = 0;
  for (let c = long as unknown as { parent: unknown } | null; c; c = c.parent as { parent: unknown } | null) depth++;
  assert.ok(depth <= MAX_CONTEXT_DEPTH + 1, `chain of ${depth} links`);
});
