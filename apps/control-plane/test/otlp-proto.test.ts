/**
 * The control plane's OTLP/HTTP protobuf receiver: it reads what OpenTelemetry's own protobuf
 * serializer writes (an encoder Concord did not write) into the same stored spans as the JSON
 * receiver makes of the same spans, refuses malformed bytes with a 400 naming the body, and
 * answers in the request's encoding. And the services' span processor: one export per filled
 * buffer, and a bounded queue when the receiver is slow.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createServer } from 'node:http';
import { gzipSync } from 'node:zlib';
import { ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { SpanKind, SpanStatusCode } from '@concord/platform';
import { FLUSH_AT_BYTES, MAX_QUEUED_BYTES, OtlpProtoSpanProcessor } from '@concord/platform/telemetry/otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { request } from 'undici';
import { decodeOtlpJson } from '../src/traces/otlp.js';
import { MAX_SPAN_BYTES, decodeReceived, indexOtlpProto } from '../src/traces/otlp-proto.js';
import { RECEIVED_FIELDS } from '../src/traces/received.js';
import { ProtoWriter } from '@concord/core';
import { TraceStore } from '../src/traces/store.js';
import { startTraceReceiver } from './trace-receiver.js';

/** The span processor of an "order" process exporting as `opts` says, with the provider and tracer that end spans into it. */
function orderExporter(opts: ConstructorParameters<typeof OtlpProtoSpanProcessor>[0]) {
  const processor = new OtlpProtoSpanProcessor(opts);
  const provider = new BasicTracerProvider({ resource: resourceFromAttributes({ 'service.name': 'order' }), spanProcessors: [processor] });
  return { processor, provider, tracer: provider.getTracer('concord') };
}

/** `server` listening on a free port, and an "order" exporter to it (long delay) whose export errors are collected. */
async function exportingTo(server: ReturnType<typeof createServer>, timeoutMs: number) {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const errors: string[] = [];
  let reported = (_message: string) => {};
  /** The first export error, or '' when none came within `ms`. */
  const firstError = (ms: number) =>
    new Promise<string>((resolve) => {
      if (errors[0] !== undefined) return resolve(errors[0]);
      const timer = setTimeout(() => resolve(''), ms);
      reported = (message) => {
        clearTimeout(timer);
        resolve(message);
      };
    });
  const exporter = orderExporter({
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`,
    timeoutMs,
    scheduledDelayMs: 60_000,
    onError: (err) => {
      errors.push(err.message);
      reported(err.message);
    },
  });
  return { ...exporter, errors, firstError };
}

/** Finished SDK spans of one small trace: a server span with a failing child and a client child. */
function sdkSpans(): ReadableSpan[] {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'payment', 'service.instance.id': 'payment-3' }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer('concord', '0.1.0');
  const root = tracer.startSpan('POST /internal/payments', { kind: SpanKind.SERVER, attributes: { 'http.response.status_code': 201, 'concord.ratio': 0.25, 'concord.retry': false, 'concord.tags': ['a', 'b'], 'concord.offset': -3 } });
  const ctx = trace.setSpan(ROOT_CONTEXT, root);
  const child = tracer.startSpan('db.transaction', { kind: SpanKind.INTERNAL, attributes: { 'db.system': 'sqlite', 'ünïcode.key': 'välue ✓' } }, ctx);
  child.setStatus({ code: SpanStatusCode.ERROR, message: 'disk I/O error' });
  child.addEvent('retrying', { attempt: 2 });
  child.end();
  const client = tracer.startSpan('POST points', { kind: SpanKind.CLIENT }, ctx);
  client.end();
  root.end();
  return exporter.getFinishedSpans();
}

/** A finished span of `tracer`, as a processor receives it. */
function exporterSpan(tracer: ReturnType<BasicTracerProvider['getTracer']>): ReadableSpan {
  const s = tracer.startSpan('probe') as unknown as ReadableSpan & { end(): void };
  s.end();
  return s;
}

describe('OTLP/HTTP protobuf receiver', () => {
  let receiver: Awaited<ReturnType<typeof startTraceReceiver>>;
  let store: TraceStore;
  let url = '';

  before(async () => {
    receiver = await startTraceReceiver();
    store = receiver.store;
    url = `${receiver.baseUrl}/v1/traces`;
  });
  after(() => receiver.close());

  test("OpenTelemetry's own protobuf serializer and its JSON serializer give the same stored spans", () => {
    const spans = sdkSpans();
    const fromProto = decodeReceived(indexOtlpProto(Buffer.from(ProtobufTraceSerializer.serializeRequest(spans) as Uint8Array)));
    const fromJson = decodeOtlpJson(JSON.parse(new TextDecoder().decode(JsonTraceSerializer.serializeRequest(spans) as Uint8Array)));
    assert.equal(fromProto.length, 3);
    assert.deepEqual(fromProto, fromJson);
    const tx = fromProto.find((s) => s.name === 'db.transaction');
    assert.deepEqual(tx?.attributes, { 'db.system': 'sqlite', 'ünïcode.key': 'välue ✓' });
    assert.equal(tx?.status, 'ERROR');
    assert.equal(tx?.statusMessage, 'disk I/O error');
    assert.equal(tx?.service, 'payment');
    assert.equal(tx?.instance, 'payment-3');
    const server = fromProto.find((s) => s.kind === 'SERVER');
    assert.deepEqual(server?.attributes, { 'http.response.status_code': 201, 'concord.ratio': 0.25, 'concord.retry': false, 'concord.offset': -3 }, 'arrays are left out, as the JSON receiver leaves them out');
    const sdk = spans.find((s) => s.name === 'POST points') as ReadableSpan;
    const exact = BigInt(sdk.startTime[0]) * 1_000_000_000n + BigInt(sdk.startTime[1]);
    assert.equal(fromProto.find((s) => s.name === 'POST points')?.startTimeUnixNano, exact.toString(), 'nanosecond times are exact');
  });

  test('a protobuf export is stored and answered in protobuf; the trace reads back through the query API', async () => {
    const spans = sdkSpans();
    const traceId = (spans[0] as ReadableSpan).spanContext().traceId;
    const res = await request(url, { method: 'POST', body: Buffer.from(ProtobufTraceSerializer.serializeRequest(spans) as Uint8Array), headers: { 'content-type': 'application/x-protobuf' } });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'application/x-protobuf');
    assert.equal((await res.body.arrayBuffer()).byteLength, 0, 'an empty ExportTraceServiceResponse');
    const stored = store.get(traceId);
    assert.equal(stored?.spans.length, 3);
    const [summary] = store.search({ limit: 1, service: 'payment' });
    assert.equal(summary?.traceId, traceId);
    assert.equal(summary?.status, 'ERROR');
    assert.equal(summary?.spanCount, 3);
  });

  test('bytes that are not an export get a 400 naming the body; other encodings a 415 naming the content type; nothing is stored', async () => {
    const before = store.spans;
    const valid = Buffer.from(ProtobufTraceSerializer.serializeRequest(sdkSpans()) as Uint8Array);
    for (const body of [valid.subarray(0, valid.length - 7), Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f]), Buffer.from([0x0b, 0x00])]) {
      const res = await request(url, { method: 'POST', body, headers: { 'content-type': 'application/x-protobuf' } });
      assert.equal(res.statusCode, 400);
      assert.match(String(res.headers['content-type']), /problem\+json/);
      const problem = (await res.body.json()) as { errors?: Array<{ path: string }> };
      assert.equal(problem.errors?.[0]?.path, '/body');
    }
    const text = await request(url, { method: 'POST', body: 'hello', headers: { 'content-type': 'text/plain' } });
    assert.equal(text.statusCode, 415);
    await text.body.dump();
    assert.equal(store.spans, before);
  });

  test('gzip-compressed bodies (the Collector’s default) are unpacked, in both encodings; other encodings get a 415; a bomb a 400', async () => {
    const spans = sdkSpans();
    const proto = await request(url, { method: 'POST', body: gzipSync(ProtobufTraceSerializer.serializeRequest(spans) as Uint8Array), headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' } });
    assert.equal(proto.statusCode, 200);
    await proto.body.dump();
    assert.equal(store.get((spans[0] as ReadableSpan).spanContext().traceId)?.spans.length, 3);
    const more = sdkSpans();
    const json = await request(url, { method: 'POST', body: gzipSync(JsonTraceSerializer.serializeRequest(more) as Uint8Array), headers: { 'content-type': 'application/json', 'content-encoding': 'GZIP' } });
    assert.equal(json.statusCode, 200);
    await json.body.dump();
    assert.equal(store.get((more[0] as ReadableSpan).spanContext().traceId)?.spans.length, 3);
    const before = store.spans;
    const br = await request(url, { method: 'POST', body: Buffer.from([1, 2, 3]), headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'br' } });
    assert.equal(br.statusCode, 415);
    assert.equal(((await br.body.json()) as { errors?: Array<{ path: string }> }).errors?.[0]?.path, '/headers/content-encoding');
    for (const body of [gzipSync(Buffer.alloc(9 * 1_048_576)), Buffer.from('not gzip')]) {
      const res = await request(url, { method: 'POST', body, headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' } });
      assert.equal(res.statusCode, 400);
      assert.equal(((await res.body.json()) as { errors?: Array<{ path: string }> }).errors?.[0]?.path, '/body');
    }
    assert.equal(store.spans, before);
  });
});

describe('what the trace store keeps of a protobuf export', () => {
  test('a stored span keeps its own bytes, not its request: padding and oversized spans cost nothing; the byte bound evicts', () => {
    const body = Buffer.from(ProtobufTraceSerializer.serializeRequest(sdkSpans()) as Uint8Array);
    const plain = indexOtlpProto(body);
    let spansBytes = 0;
    for (let i = 0; i < plain.spans.length; i += RECEIVED_FIELDS) spansBytes += (plain.spans[i + 1] as number) - (plain.spans[i] as number);
    // An unknown field of 1 MiB after the spans, and a span of MAX_SPAN_BYTES + 1 (a huge name).
    const w = new ProtoWriter();
    w.raw(99, Buffer.alloc(1_048_576, 7));
    const huge = new ProtoWriter();
    const rs = huge.begin(1);
    const ss = huge.begin(2);
    const sp = huge.begin(2);
    huge.hex(1, 'ab'.repeat(16));
    huge.hex(2, 'cd'.repeat(8));
    huge.string(5, 'n'.repeat(MAX_SPAN_BYTES));
    huge.end(sp);
    huge.end(ss);
    huge.end(rs);
    const padded = Buffer.concat([body, w.bytes(), huge.bytes()]);
    const received = indexOtlpProto(padded);
    assert.equal(received.spans.length / RECEIVED_FIELDS, 3, 'the oversized span is left out');
    const traceId = (decodeReceived(received)[0] as { traceId: string }).traceId;
    const store = new TraceStore({ maxTraces: 100, maxSpans: 1000, maxBytes: 10 * spansBytes, maxSpansPerTrace: 100, retentionMs: 60_000 });
    store.addReceived(received, Date.now());
    assert.equal(store.bytes, spansBytes, 'the store holds the spans’ bytes only');
    padded.fill(0); // the request's buffer is reused by someone else: the stored spans do not change
    assert.equal(store.get(traceId)?.spans.length, 3);
    assert.ok(store.get(traceId)?.spans.some((s) => s.name === 'db.transaction'));
    // Eleven more traces of the same size: the oldest go, by bytes, though far below the span and trace bounds.
    for (let i = 0; i < 11; i++) store.addReceived(indexOtlpProto(Buffer.from(ProtobufTraceSerializer.serializeRequest(sdkSpans()) as Uint8Array)), Date.now());
    assert.ok(store.bytes <= 10 * spansBytes, `${store.bytes} bytes kept, bound ${10 * spansBytes}`);
    assert.equal(store.size, 10);
    assert.equal(store.get(traceId), null, 'the oldest trace went first');
  });
});

describe('the services’ protobuf span processor', () => {
  test('spans wait until a buffer is full, then go in one request; a receiver that is gone costs a bounded queue', async () => {
    const bodies: Buffer[] = [];
    let hold = false;
    const held: Array<() => void> = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        bodies.push(Buffer.concat(chunks));
        const answer = () => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
        if (hold) held.push(answer);
        else answer();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const { processor, provider, tracer } = orderExporter({ url: `http://127.0.0.1:${port}/v1/traces`, timeoutMs: 5000, scheduledDelayMs: 60_000 });
    try {
      const big = 'x'.repeat(900);
      const span = () => tracer.startSpan('step', { attributes: { big } }).end();
      // Under FLUSH_AT_BYTES nothing is sent: the delay here is a minute.
      const perSpan = 1000; // a little more than each span's encoding
      for (let i = 0; i < Math.floor(FLUSH_AT_BYTES / perSpan) - 20; i++) span();
      assert.equal(processor.requests, 0, 'below the threshold nothing is sent before the delay');
      for (let i = 0; i < 100; i++) span();
      assert.equal(processor.requests, 1, 'the span that filled the buffer sent it');
      await processor.forceFlush();
      assert.equal(bodies.length, 2, 'one request when the buffer filled, one for the rest on flush');
      assert.ok((bodies[0] as Buffer).length >= FLUSH_AT_BYTES);
      const sent = bodies.flatMap((b) => decodeReceived(indexOtlpProto(b)));
      assert.equal(sent.length, Math.floor(FLUSH_AT_BYTES / perSpan) - 20 + 100);
      assert.ok(sent.every((r) => r.service === 'order'));
      const total = sent.length;

      // A receiver that never answers: two exports wait, the rest queues up to MAX_QUEUED_BYTES and is dropped beyond it.
      hold = true;
      const n = Math.ceil((MAX_QUEUED_BYTES * 1.5) / perSpan) + 2 * Math.ceil(FLUSH_AT_BYTES / perSpan);
      for (let i = 0; i < n; i++) span();
      assert.ok(processor.dropped > 0, 'spans beyond the bound are dropped, not queued');
      assert.ok(processor.dropped < n, 'spans below the bound wait');
      hold = false;
      for (const answer of held.splice(0)) answer();
      await processor.forceFlush();
      for (const answer of held.splice(0)) answer();
      await processor.forceFlush();
      const after = bodies.flatMap((b) => decodeReceived(indexOtlpProto(b))).length - total;
      assert.equal(after + processor.dropped, n, 'every span was either sent or counted as dropped');
      const largest = Math.max(...bodies.map((b) => b.length));
      assert.ok(largest < FLUSH_AT_BYTES + 64 * 1024, `a backlog goes in requests of about FLUSH_AT_BYTES (largest ${largest} bytes), under a receiver's body limit`);

      // A span that cannot be encoded (an id that is not hex) is dropped whole; the next request is well-formed.
      const good = bodies.length;
      const sample = exporterSpan(tracer); // a real span, sent like any other
      const before = processor.dropped;
      const broken = { ...sample, spanContext: () => ({ traceId: 'not hex at all, thirty-two chars', spanId: 'b7ad6b7169203331', traceFlags: 1 }) };
      assert.doesNotThrow(() => processor.onEnd(broken as never));
      span();
      await processor.forceFlush();
      assert.equal(processor.dropped, before + 1);
      assert.equal(bodies.slice(good).flatMap((b) => decodeReceived(indexOtlpProto(b))).length, 2, 'the sample and the span after the broken one');
    } finally {
      hold = false;
      for (const answer of held.splice(0)) answer();
      await provider.shutdown();
      server.close();
    }
  });
});

test('request buffers are written again only after their export was answered: across many requests, answered out of turn, every span arrives once under its own name', async () => {
  const names: string[] = [];
  let answered = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      for (const s of decodeReceived(indexOtlpProto(Buffer.concat(chunks)))) names.push(s.name);
      // Answers come back after different delays, so exports end in another order than they began.
      setTimeout(() => {
        answered++;
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      }, answered % 3 === 0 ? 30 : 1);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { processor, provider, tracer } = orderExporter({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`, timeoutMs: 5000, scheduledDelayMs: 60_000 });
  try {
    const pad = 'p'.repeat(2000);
    const sent: string[] = [];
    // About 12 full requests, in bursts, with the event loop turning between them (answers arrive meanwhile).
    for (let burst = 0; burst < 24; burst++) {
      for (let i = 0; i < 70; i++) {
        const name = `span-${burst}-${i}`;
        sent.push(name);
        tracer.startSpan(name, { attributes: { pad } }).end();
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await processor.forceFlush();
    assert.ok(processor.requests >= 10, `${processor.requests} requests`);
    assert.equal(processor.dropped, 0);
    assert.deepEqual([...names].sort(), [...sent].sort());
  } finally {
    await provider.shutdown();
    server.close();
  }
});

test('a receiver that takes exports and never answers: the small requests the delay seals wait in buffers of their own size (the queue bound counts what they hold)', async () => {
  const held: Array<() => void> = [];
  let answering = false;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (answering) res.writeHead(200).end();
      else held.push(() => res.writeHead(200).end());
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { processor, provider, tracer } = orderExporter({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`, timeoutMs: 60_000, scheduledDelayMs: 1 });
  const queued = () => (processor as unknown as { sealed: Array<{ body: Buffer; heldBytes: number }> }).sealed;
  try {
    // Two exports wait for an answer; every few milliseconds the delay seals one more small request.
    for (let i = 0; i < 40 && queued().length < 20; i++) {
      tracer.startSpan(`small-${i}`).end();
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok(queued().length >= 5, `${queued().length} requests wait`);
    for (const { body, heldBytes } of queued()) {
      assert.ok(body.buffer.byteLength <= Math.max(Buffer.poolSize, body.length), `a ${body.length}-byte request holds ${body.buffer.byteLength} bytes`);
      assert.ok(heldBytes >= body.length);
    }
  } finally {
    answering = true;
    for (const answer of held.splice(0)) answer();
    await provider.shutdown();
    server.close();
  }
});

describe('the services’ span export over a kept-alive connection', () => {
  test('a connection that dies before any answer is tried once more; a refusal (5xx) or an answer cut short is not sent again and its spans are counted as dropped', async () => {
    let requests = 0;
    let mode: 'cut-first' | 'refuse' | 'cut-answer' = 'cut-first';
    const server = createServer((req, res) => {
      requests++;
      req.resume();
      req.on('end', () => {
        // The first request of this phase: the connection goes without an answer, as a kept-alive
        // one the receiver closed while the export was on its way.
        if (mode === 'cut-first' && requests === 1) req.socket.destroy();
        else if (mode === 'refuse') res.writeHead(503).end();
        else if (mode === 'cut-answer') {
          // An answer begun and cut short: the receiver had the export.
          res.writeHead(200, { 'content-length': '10' });
          res.flushHeaders();
          setImmediate(() => req.socket.destroy());
        }
        else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      });
    });
    const { processor, provider, tracer, errors } = await exportingTo(server, 5000);
    try {
      tracer.startSpan('step').end();
      await processor.forceFlush();
      assert.equal(requests, 2, 'the export whose connection died went again');
      assert.equal(processor.dropped, 0, 'and its span arrived');
      assert.deepEqual(errors, []);

      mode = 'refuse';
      requests = 0;
      tracer.startSpan('step').end();
      tracer.startSpan('step').end();
      await processor.forceFlush();
      assert.equal(requests, 1, 'a receiver that answered is not asked again');
      assert.equal(processor.dropped, 2, 'the refused export’s spans are counted as dropped');
      assert.match(errors[0] ?? '', /answered 503/);

      mode = 'cut-answer';
      requests = 0;
      tracer.startSpan('step').end();
      await processor.forceFlush();
      assert.equal(requests, 1, 'an answer cut short is not followed by a second try');
      assert.equal(processor.dropped, 3);
    } finally {
      await provider.shutdown();
      server.close();
    }
  });
});

describe('the services’ span export to a receiver that never answers', () => {
  test('the export ends at its timeout, says so, and its spans are counted as dropped', async () => {
    const server = createServer((req) => req.resume());
    const { processor, provider, tracer, firstError } = await exportingTo(server, 300);
    try {
      tracer.startSpan('step').end();
      // forceFlush gives up at the same 300 ms: on a busy machine it may return just before the
      // export's own timeout is reported, so the report is awaited (bounded), not assumed.
      await processor.forceFlush();
      assert.match(await firstError(5_000), /OTLP export to http:\/\/127\.0\.0\.1:\d+\/v1\/traces timed out after 300 ms/);
      assert.equal(processor.dropped, 1);
    } finally {
      await provider.shutdown();
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('the services’ span processor’s schedule', () => {
  test('a finished span waits the schedule delay, to the millisecond, then goes by itself', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { processor, provider, tracer } = orderExporter({ url: 'http://127.0.0.1:9/v1/traces', timeoutMs: 5000, scheduledDelayMs: 1234 });
    try {
      tracer.startSpan('step').end();
      t.mock.timers.tick(1233);
      assert.equal(processor.requests, 0, 'nothing before the delay');
      t.mock.timers.tick(1);
      assert.equal(processor.requests, 1, 'the export starts when the delay ends');
    } finally {
      t.mock.timers.reset();
      await provider.shutdown();
    }
  });
});
