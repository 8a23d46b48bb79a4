import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpanKind, trace } from '@opentelemetry/api';
import { pino } from 'pino';
import { ROOT_CONTEXT, Telemetry, type TraceContext, samplerFromEnv } from '../src/telemetry/tracing.js';
import { CheckedRemoteContext } from '../src/telemetry/recorder.js';
import { loadConfig } from '../src/service-kit/config.js';
import { kitSchema } from '../src/service-kit/server.js';

// Spans are exported to a port nobody listens on; nothing here waits for an export.
const env = { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:9/v1/traces' };
const log = pino({ level: 'silent' });

function telemetry(enabled: boolean): Telemetry {
  return new Telemetry({ service: 'unit', version: 'v1', instanceId: 'unit-1', controlUrl: 'http://127.0.0.1:9', env, log, enabled });
}

const spanIdOf = (ctx: TraceContext) => trace.getSpanContext(ctx)?.spanId;
const parentIdOf = (span: unknown) => (span as { parentSpanContext?: { spanId: string } }).parentSpanContext?.spanId;

test('with() makes a context active for the synchronous part of its function only, and restores the outer one', async () => {
  const t = telemetry(true);
  const outer = t.start('outer', ROOT_CONTEXT, SpanKind.SERVER).ctx;
  const inner = t.start('inner', outer, SpanKind.INTERNAL).ctx;
  let seenBeforeAwait: TraceContext | null = null;
  let seenAfterAwait: TraceContext | null = null;
  let seenNested: TraceContext | null = null;
  const pending = t.with(outer, async () => {
    t.with(inner, () => {
      seenNested = t.active();
    });
    seenBeforeAwait = t.active();
    await Promise.resolve();
    seenAfterAwait = t.active();
  });
  assert.equal(t.active(), ROOT_CONTEXT, 'nothing stays active once with() returned');
  await pending;
  assert.equal(seenNested, inner);
  assert.equal(seenBeforeAwait, outer, 'the outer context is back after a nested with()');
  assert.equal(seenAfterAwait, ROOT_CONTEXT, 'after an await the context must travel explicitly');
});

test('with() restores the outer context when its function throws', () => {
  const t = telemetry(true);
  const ctx = t.start('s', ROOT_CONTEXT, SpanKind.INTERNAL).ctx;
  assert.throws(() =>
    t.with(ctx, () => {
      throw new Error('boom');
    }),
  );
  assert.equal(t.active(), ROOT_CONTEXT);
});

test('an explicit parent wins over the active context; without one the active context is the parent', () => {
  const t = telemetry(true);
  const a = t.start('a', ROOT_CONTEXT, SpanKind.SERVER).ctx;
  const b = t.start('b', ROOT_CONTEXT, SpanKind.SERVER).ctx;
  t.with(a, () => {
    const explicit = t.start('child of b', b, SpanKind.CLIENT);
    assert.equal(parentIdOf(explicit.span), spanIdOf(b));
    assert.equal(trace.getSpanContext(explicit.ctx)?.traceId, trace.getSpanContext(b)?.traceId);
    const implicit = t.start('child of a', null, SpanKind.CLIENT);
    assert.equal(parentIdOf(implicit.span), spanIdOf(a));
  });
});

test('inSpan runs its function in a child of the given parent and hands it the child context', async () => {
  const t = telemetry(true);
  const parent = t.start('request', ROOT_CONTEXT, SpanKind.SERVER).ctx;
  let childCtx: TraceContext | null = null;
  let childParent: string | undefined;
  await t.inSpan(
    'step',
    SpanKind.INTERNAL,
    async (span, ctx) => {
      childCtx = ctx;
      childParent = parentIdOf(span);
      await Promise.resolve();
    },
    {},
    parent,
  );
  assert.equal(childParent, spanIdOf(parent));
  assert.equal(trace.getSpanContext(childCtx as unknown as TraceContext)?.traceId, trace.getSpanContext(parent)?.traceId);
  await assert.rejects(t.inSpan('failing', SpanKind.INTERNAL, async () => Promise.reject(new Error('no')), {}, parent), /no/);
});

test('with tracing off nothing becomes active and spans are not recorded', async () => {
  const t = telemetry(false);
  const { span, ctx } = t.start('off', null, SpanKind.SERVER);
  assert.equal(span.isRecording(), false);
  t.with(ctx, () => assert.equal(t.active(), ROOT_CONTEXT));
  assert.equal(await t.inSpan('off', SpanKind.INTERNAL, async () => 7), 7);
});

test('inject writes the same headers as OpenTelemetry’s W3C and B3 multi-header propagators', async () => {
  const { W3CTraceContextPropagator, TraceState, suppressTracing } = await import('@opentelemetry/core');
  const { B3Propagator, B3InjectEncoding } = await import('@opentelemetry/propagator-b3');
  const { defaultTextMapSetter } = await import('@opentelemetry/api');
  const w3c = new W3CTraceContextPropagator();
  const b3 = new B3Propagator({ injectEncoding: B3InjectEncoding.MULTI_HEADER });
  const t = telemetry(true);
  const traceId = '0af7651916cd43dd8448eb211c80319c';
  const spanId = 'b7ad6b7169203331';
  const contexts: Array<[string, TraceContext]> = [
    ['sampled', trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId, traceFlags: 1 })],
    ['not sampled', trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId, traceFlags: 0 })],
    ['with tracestate', trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId, traceFlags: 1, traceState: new TraceState('rojo=00f067aa0ba902b7,congo=t61rcWkgMzE') })],
    ['B3 debug from an incoming request', b3.extract(ROOT_CONTEXT, { 'x-b3-traceid': traceId, 'x-b3-spanid': spanId, 'x-b3-flags': '1' }, { get: (c, k) => (c as Record<string, string>)[k], keys: (c) => Object.keys(c as object) })],
    ['a span the SDK started', t.start('op', ROOT_CONTEXT, SpanKind.CLIENT).ctx],
    ['no span', ROOT_CONTEXT],
    ['invalid ids', trace.setSpanContext(ROOT_CONTEXT, { traceId: '0'.repeat(32), spanId: '0'.repeat(16), traceFlags: 1 })],
    ['tracing suppressed', suppressTracing(trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId, traceFlags: 1 }))],
  ];
  for (const [what, ctx] of contexts) {
    const expected: Record<string, string> = {};
    w3c.inject(ctx, expected, defaultTextMapSetter);
    b3.inject(ctx, expected, defaultTextMapSetter);
    assert.deepEqual(t.inject(ctx, {}), expected, what);
  }
  // Flags are two hex digits (W3C Trace Context §3.2.2.5); the propagator writes "081" for 0x81.
  const unknownBits = trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId, traceFlags: 0x81 });
  assert.equal(t.inject(unknownBits, {}).traceparent, `00-${traceId}-${spanId}-81`);
});

test('extract reads a traceparent as OpenTelemetry’s W3C propagator does, the hand-checked version-00 form included, and the spans started under it follow its flag', async () => {
  const { W3CTraceContextPropagator } = await import('@opentelemetry/core');
  const w3c = new W3CTraceContextPropagator();
  const getter = { get: (c: Record<string, string>, k: string) => c[k], keys: (c: Record<string, string>) => Object.keys(c) };
  const t = new Telemetry({ service: 'unit', version: 'v1', instanceId: 'unit-1', controlUrl: 'http://127.0.0.1:9', env, log, enabled: true, sampler: { name: 'parentbased_always_on', ratio: 1 } });
  const traceId = '0af7651916cd43dd8448eb211c80319c';
  const spanId = 'b7ad6b7169203331';
  const given = [
    `00-${traceId}-${spanId}-01`,
    `00-${traceId}-${spanId}-00`,
    `00-${traceId}-${spanId}-ff`,
    `00-${'0'.repeat(32)}-${spanId}-01`,
    `00-${traceId}-${'0'.repeat(16)}-01`,
    `00-${traceId.toUpperCase()}-${spanId}-01`,
    `00-${traceId}-${spanId}-0g`,
    `00-${traceId}-${spanId}-01-extra`,
    ` 00-${traceId}-${spanId}-01`,
    `01-${traceId}-${spanId}-01`,
    `01-${traceId}-${spanId}-01-future`,
    `ff-${traceId}-${spanId}-01`,
    `00_${traceId}-${spanId}-01`,
    `00-${traceId}_${spanId}-01`,
    `00-${traceId}-${spanId}_01`,
    `00-${traceId.slice(0, 31)}é-${spanId}-01`,
    '',
  ];
  // Every one-character change of a valid value, too: the hand check and the regular expression must agree on each.
  const valid = `00-${traceId}-${spanId}-01`;
  for (let i = 0; i < valid.length; i++) for (const c of ['0', 'f', 'F', '-', 'x', ' ']) given.push(`${valid.slice(0, i)}${c}${valid.slice(i + 1)}`);
  for (const tp of given) {
    const expected = trace.getSpanContext(w3c.extract(ROOT_CONTEXT, { traceparent: tp }, getter)) ?? null;
    const got = trace.getSpanContext(t.extract({ traceparent: tp })) ?? null;
    // The hand check takes every valid version-00 value of 55 characters (the propagator the rest).
    if (got && tp.length === 55 && tp.startsWith('00-')) assert.ok(got instanceof CheckedRemoteContext, `${tp}: read by hand`);
    assert.deepEqual(got === null ? null : { ...got }, expected === null ? null : { ...expected }, JSON.stringify(tp));
    if (!got) continue;
    const child = t.start('op', t.extract({ traceparent: tp }), SpanKind.SERVER).span;
    assert.equal(child.spanContext().traceId, got.traceId, `${tp}: the trace continues`);
    assert.equal(child.isRecording(), (got.traceFlags & 1) === 1, `${tp}: the caller's sampled flag decides`);
    if (child.isRecording()) assert.equal(parentIdOf(child), got.spanId, `${tp}: the parent is the caller's span`);
  }
  // A tracestate travels with it, read by the propagator.
  const withState = trace.getSpanContext(t.extract({ traceparent: valid, tracestate: 'rojo=00f067aa0ba902b7' }));
  assert.equal(withState?.traceState?.get('rojo'), '00f067aa0ba902b7');
});

test('a Telemetry sampling percentage replaces the environment’s sampler while it is in force, and removing it restores that sampler', () => {
  const t = new Telemetry({
    service: 'unit',
    version: 'v1',
    instanceId: 'unit-1',
    controlUrl: 'http://127.0.0.1:9',
    env: { ...env, OTEL_TRACES_SAMPLER: 'always_on' },
    log,
    enabled: true,
  });
  const recordedRoots = (n: number) =>
    Array.from({ length: n }, () => t.start('root', ROOT_CONTEXT, SpanKind.SERVER).span.isRecording()).filter(Boolean).length;
  assert.equal(recordedRoots(50), 50, 'always_on from the environment');

  t.useSampling({ percentage: 0, telemetry: 'mesh-default' });
  assert.deepEqual(t.tracingReport(), { enabled: true, sampling: { percentage: 0, telemetry: 'mesh-default' }, exporter: 'otlp' });
  assert.equal(recordedRoots(50), 0, '0 %: no new trace is recorded');
  // The decision follows the parent: a trace sampled upstream stays whole.
  const sampledParent = trace.setSpanContext(ROOT_CONTEXT, { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: 1, isRemote: true });
  assert.equal(t.start('child', sampledParent, SpanKind.SERVER).span.isRecording(), true, 'a sampled parent is followed');

  // A local parent recorded before the switch keeps its trace whole too; its unsampled sibling's
  // children stay unrecorded (parent-based, decided without checking the ids again).
  t.useSampling({ percentage: 100, telemetry: 'all' });
  const local = t.start('local root', ROOT_CONTEXT, SpanKind.SERVER);
  t.useSampling({ percentage: 0, telemetry: 'none' });
  const dropped = t.start('dropped root', ROOT_CONTEXT, SpanKind.SERVER);
  assert.equal(t.start('child', local.ctx, SpanKind.INTERNAL).span.isRecording(), true, 'a sampled local parent is followed');
  assert.equal(t.start('child', dropped.ctx, SpanKind.INTERNAL).span.isRecording(), false, 'an unsampled local parent is followed');

  t.useSampling({ percentage: 50, telemetry: 'half' });
  const half = recordedRoots(2000);
  assert.ok(half > 800 && half < 1200, `50 %: about half the new traces (${half} of 2000)`);
  const unsampledParent = trace.setSpanContext(ROOT_CONTEXT, { traceId: 'c'.repeat(32), spanId: 'd'.repeat(16), traceFlags: 0, isRemote: true });
  assert.equal(t.start('child', unsampledParent, SpanKind.SERVER).span.isRecording(), false, 'an unsampled parent is followed');

  t.useSampling(null);
  assert.deepEqual(t.tracingReport(), { enabled: true, sampling: null, exporter: 'otlp' });
  assert.equal(recordedRoots(50), 50, 'back to always_on');
});

test('with tracing off a Telemetry sampling percentage records nothing', () => {
  const t = telemetry(false);
  t.useSampling({ percentage: 100, telemetry: 'all' });
  assert.deepEqual(t.tracingReport(), { enabled: false, sampling: null, exporter: 'otlp' });
  assert.equal(t.start('root', ROOT_CONTEXT, SpanKind.SERVER).span.isRecording(), false);
});

test('OTEL_TRACES_EXPORTER=none: spans are sampled and recorded as with otlp, and nothing is sent', async () => {
  let exports = 0;
  const receiver = createServer((req, res) => {
    exports++;
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end());
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const controlUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  const run = async (exporter: 'otlp' | 'none') => {
    const t = new Telemetry({ service: 'unit', version: 'v1', instanceId: 'unit-1', controlUrl, env: { OTEL_TRACES_SAMPLER: 'always_on' }, log, enabled: true, exporter });
    const { span, ctx } = t.start('POST /api/orders', ROOT_CONTEXT, SpanKind.SERVER);
    const recording = span.isRecording();
    span.end();
    const traceparent = t.traceparent(ctx);
    await t.shutdown();
    return { recording, traceparent, report: t.tracingReport() };
  };
  try {
    const none = await run('none');
    assert.equal(none.recording, true, 'the span is recorded');
    assert.equal(none.report.exporter, 'none', 'and the data plane reports it, for `concord config status`');
    assert.match(none.traceparent ?? '', /-01$/, 'and sampled, as downstream sees it');
    assert.equal(exports, 0, 'nothing was exported');
    const otlp = await run('otlp');
    assert.equal(otlp.recording, true);
    assert.equal(exports, 1, 'the same span under otlp is exported (the receiver works)');
  } finally {
    receiver.close();
  }
});

test('OTEL_BSP_SCHEDULE_DELAY and OTEL_TRACES_EXPORTER are read as OpenTelemetry defines them: milliseconds (0 allowed), enum values in any case and with spaces around', () => {
  assert.equal(loadConfig(kitSchema, {}).scheduleDelayMs, 500);
  assert.equal(loadConfig(kitSchema, { OTEL_BSP_SCHEDULE_DELAY: '0' }).scheduleDelayMs, 0);
  assert.equal(loadConfig(kitSchema, { OTEL_BSP_SCHEDULE_DELAY: '1234' }).scheduleDelayMs, 1234);
  assert.throws(() => loadConfig(kitSchema, { OTEL_BSP_SCHEDULE_DELAY: '-1' }), /OTEL_BSP_SCHEDULE_DELAY="-1" is invalid/);
  assert.equal(loadConfig(kitSchema, { OTEL_TRACES_EXPORTER: ' NONE ' }).exporter, 'none');
  assert.equal(loadConfig(kitSchema, { OTEL_TRACES_SAMPLER: 'Always_Off' }).sampler, 'always_off');
  assert.throws(() => loadConfig(kitSchema, { OTEL_TRACES_EXPORTER: 'otlp,console' }), /OTEL_TRACES_EXPORTER="otlp,console" is invalid: expected one of otlp, none/);
});

test('OTEL_TRACES_SAMPLER_ARG is a ratio in [0, 1] checked at start-up (it used to fall back to 1 silently), and the sampler it sets is the one used', () => {
  assert.equal(loadConfig(kitSchema, {}).samplerArg, 1);
  assert.equal(loadConfig(kitSchema, { OTEL_TRACES_SAMPLER_ARG: ' 0.25 ' }).samplerArg, 0.25);
  assert.equal(loadConfig(kitSchema, { OTEL_TRACES_SAMPLER_ARG: '0' }).samplerArg, 0);
  for (const bad of ['1.5', '-0.1', 'abc', '25%', '1e-1']) {
    assert.throws(() => loadConfig(kitSchema, { OTEL_TRACES_SAMPLER_ARG: bad }), new RegExp(`OTEL_TRACES_SAMPLER_ARG="${bad}" is invalid: expected a decimal number from 0 to 1`), bad);
  }
  assert.equal(String(samplerFromEnv({ OTEL_TRACES_SAMPLER: 'TraceIdRatio', OTEL_TRACES_SAMPLER_ARG: '0.25' })), 'TraceIdRatioBased{0.25}');
  assert.throws(() => samplerFromEnv({ OTEL_TRACES_SAMPLER_ARG: 'half' }), /OTEL_TRACES_SAMPLER_ARG="half" is invalid/);
  // The service kit hands Telemetry the sampler it validated: the environment is not read again.
  const t = new Telemetry({
    service: 'unit',
    version: 'v1',
    instanceId: 'unit-1',
    controlUrl: 'http://127.0.0.1:9',
    env: { OTEL_TRACES_SAMPLER: 'always_on' },
    log,
    enabled: true,
    exporter: 'none',
    sampler: { name: 'always_off', ratio: 1 },
  });
  assert.equal(t.start('root', ROOT_CONTEXT, SpanKind.SERVER).span.isRecording(), false, 'always_off, as validated, decides');
});

test('a collector address without its http(s) scheme stops start-up, naming the variable; a full URL is taken', () => {
  for (const name of ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']) {
    assert.throws(() => loadConfig(kitSchema, { [name]: 'collector:4318' }), new RegExp(`${name}="collector:4318" is invalid: expected an absolute http\\(s\\) URL`));
    assert.throws(() => loadConfig(kitSchema, { [name]: 'grpc://collector:4317' }), new RegExp(`${name}="grpc://collector:4317" is invalid`));
    assert.doesNotThrow(() => loadConfig(kitSchema, { [name]: 'http://collector:4318' }));
  }
});
