/**
 * The services' span export (protobuf) against the control plane's real receiver on a socket: what a
 * service's spans become in the trace store (ids, parents, kinds, times, attributes, error
 * status and message), and what the receiver makes of the request the exporter writes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SpanKind, SpanStatusCode, Telemetry, idsOf } from '@concord/platform';
import { decodeOtlpJson } from '../src/traces/otlp.js';
import type { TraceStore } from '../src/traces/store.js';
import { silentLog, startTraceReceiver } from './trace-receiver.js';

describe('OTLP export to the control plane', () => {
  const log = silentLog;
  let receiver: Awaited<ReturnType<typeof startTraceReceiver>>;
  let store: TraceStore;
  let controlUrl = '';

  before(async () => {
    receiver = await startTraceReceiver();
    store = receiver.store;
    controlUrl = receiver.baseUrl;
  });
  after(() => receiver.close());

  function telemetry(): Telemetry {
    return new Telemetry({ service: 'inventory', version: 'v2', instanceId: 'inventory-7', controlUrl, env: { OTEL_TRACES_SAMPLER: 'always_on' }, log, enabled: true });
  }

  test('spans arrive in the trace store with their parents, kinds, times, attributes and error status', async () => {
    const tel = telemetry();
    const { span: root, ctx } = tel.start('POST /internal/reservations', null, SpanKind.SERVER, { 'http.request.method': 'POST', 'concord.batch.size': 3, 'concord.ratio': 0.5, 'concord.retry': true });
    const failed = tel.inSpan('db.transaction', SpanKind.INTERNAL, async () => {
      throw new Error('disk I/O error');
    }, {}, ctx);
    await assert.rejects(failed, /disk I\/O error/);
    await tel.inSpan('POST payment', SpanKind.CLIENT, async () => undefined, { 'server.address': 'payment' }, ctx);
    root.end();
    await tel.shutdown();

    const ids = idsOf(ctx) as { traceId: string; spanId: string };
    const stored = store.get(ids.traceId);
    assert.ok(stored, 'the trace is in the store');
    assert.equal(stored.spans.length, 3);
    const byName = new Map(stored.spans.map((s) => [s.name, s]));
    const server = byName.get('POST /internal/reservations');
    const tx = byName.get('db.transaction');
    const client = byName.get('POST payment');
    assert.ok(server && tx && client);
    assert.equal(server.spanId, ids.spanId);
    assert.equal(server.parentSpanId, null, 'the root has no parent');
    assert.equal(tx.parentSpanId, server.spanId);
    assert.equal(client.parentSpanId, server.spanId);
    assert.deepEqual([server.kind, tx.kind, client.kind], ['SERVER', 'INTERNAL', 'CLIENT']);
    assert.equal(server.service, 'inventory');
    assert.equal(server.instance, 'inventory-7');
    assert.deepEqual(server.attributes, { 'http.request.method': 'POST', 'concord.batch.size': 3, 'concord.ratio': 0.5, 'concord.retry': true });
    assert.equal(tx.status, 'ERROR');
    assert.equal(tx.statusMessage, 'disk I/O error');
    assert.equal(server.status, 'UNSET');
    for (const s of stored.spans) {
      assert.match(s.startTimeUnixNano, /^\d{19}$/, 'nanoseconds since the epoch, as a decimal string');
      assert.ok(BigInt(s.endTimeUnixNano) >= BigInt(s.startTimeUnixNano));
      assert.ok(Math.abs(Number(BigInt(s.startTimeUnixNano) / 1_000_000n) - Date.now()) < 60_000, 'a start time near now');
    }
  });

  test('a failing receiver drops the batch without throwing into the service', async () => {
    const tel = new Telemetry({ service: 'order', version: 'v1', instanceId: 'order-1', controlUrl: 'http://127.0.0.1:9', env: { OTEL_TRACES_SAMPLER: 'always_on' }, log, enabled: true });
    await tel.inSpan('lost', SpanKind.INTERNAL, async () => undefined);
    await tel.shutdown();
    assert.equal(
      store.search({ limit: 100 }).some((t) => t.services.includes('order')),
      false,
    );
  });

  test('the decoder reads the lean form: omitted parent, attributes and status are defaults', () => {
    const spans = decodeOtlpJson({
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'points' } }] },
          scopeSpans: [{ scope: { name: 'concord' }, spans: [{ traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), name: 'award', kind: 1, startTimeUnixNano: '1', endTimeUnixNano: '2' }] }],
        },
      ],
    });
    assert.equal(spans.length, 1);
    assert.deepEqual([spans[0]?.parentSpanId, spans[0]?.status, spans[0]?.attributes, spans[0]?.kind], [null, 'UNSET', {}, 'INTERNAL']);
    assert.equal(SpanStatusCode.ERROR, 2, 'OTLP numbers status codes as the API does');
  });
});
