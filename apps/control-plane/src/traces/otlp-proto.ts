/**
 * Reads an OTLP/HTTP protobuf trace export (ExportTraceServiceRequest) into received spans: where
 * each span's bytes are, and the few fields the store indexes (trace id, times, whether there is
 * a parent, error status). The rest of a span (name, attributes, kind) stays encoded and is
 * decoded when a query asks for it. Unknown fields are skipped, as protobuf allows. Spans decoded
 * from JSON are encoded the same way (encodeStored), so the store keeps one form.
 */
import { ProtoError, ProtoReader, ProtoWriter, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT, fixed64ToDecimal } from '@concord/core';
import { writeKeyValues } from '@concord/platform/telemetry/otlp-proto';
import { KINDS, SPAN_LIMITS } from './otlp.js';
import { ERROR, R_END, R_RESOURCE, R_START, RECEIVED_FIELDS, ROOT, type ReceivedSpans, type SpanResource } from './received.js';
import type { StoredSpan } from './store.js';

export { ProtoError };

function expectWire(got: number, want: number, what: string): void {
  if (got !== want) throw new ProtoError(`${what} has wire type ${got}, expected ${want}`);
}

/** An AnyValue as the store keeps it (string, number or boolean; others are left out). */
function anyValue(buf: Buffer, start: number, end: number): string | number | boolean | undefined {
  const r = new ProtoReader(buf, start, end);
  let out: string | number | boolean | undefined;
  while (!r.done) {
    const tag = r.varint();
    const wt = tag & 7;
    switch (tag >>> 3) {
      case 1:
        expectWire(wt, WIRE_LEN, 'AnyValue.string_value');
        out = r.string().slice(0, SPAN_LIMITS.stringValueChars);
        break;
      case 2:
        expectWire(wt, WIRE_VARINT, 'AnyValue.bool_value');
        out = r.varint() !== 0;
        break;
      case 3:
        expectWire(wt, WIRE_VARINT, 'AnyValue.int_value');
        out = r.int64();
        break;
      case 4:
        expectWire(wt, WIRE_FIXED64, 'AnyValue.double_value');
        out = r.double();
        break;
      default:
        r.skip(wt);
    }
  }
  return out;
}

/** A KeyValue: its key and value, or null when either is missing or unusable. */
function keyValue(buf: Buffer, start: number, end: number): [string, string | number | boolean] | null {
  const r = new ProtoReader(buf, start, end);
  let key: string | undefined;
  let value: string | number | boolean | undefined;
  while (!r.done) {
    const tag = r.varint();
    const wt = tag & 7;
    const field = tag >>> 3;
    if (field === 1 && wt === WIRE_LEN) key = r.string();
    else if (field === 2 && wt === WIRE_LEN) {
      const v = r.len();
      value = anyValue(buf, v.start, v.end);
    } else r.skip(wt);
  }
  return key === undefined || value === undefined || key === '__proto__' ? null : [key.slice(0, SPAN_LIMITS.keyChars), value];
}

function resourceOf(buf: Buffer, start: number, end: number): SpanResource {
  const r = new ProtoReader(buf, start, end);
  const res: SpanResource = { service: 'unknown', instance: '' };
  while (!r.done) {
    const tag = r.varint();
    if (tag >>> 3 === 1 && (tag & 7) === WIRE_LEN) {
      const at = r.len();
      const kv = keyValue(buf, at.start, at.end);
      if (kv?.[0] === 'service.name') res.service = String(kv[1]);
      else if (kv?.[0] === 'service.instance.id') res.instance = String(kv[1]);
    } else r.skip(tag & 7);
  }
  return res;
}

function statusOf(buf: Buffer, start: number, end: number): { code: number; message?: string } {
  const r = new ProtoReader(buf, start, end);
  const out: { code: number; message?: string } = { code: 0 };
  while (!r.done) {
    const tag = r.varint();
    const wt = tag & 7;
    if (tag >>> 3 === 3 && wt === WIRE_VARINT) out.code = r.varint();
    else if (tag >>> 3 === 2 && wt === WIRE_LEN) out.message = r.string();
    else r.skip(wt);
  }
  return out;
}

/**
 * Reads the index fields of one Span message at `buf[start, end)` into `out` (RECEIVED_FIELDS
 * numbers); false, writing nothing, when its ids are not 16 and 8 bytes. Runs for every span
 * received: it allocates no more than its reader (and a status's).
 */
function indexSpan(buf: Buffer, start: number, end: number, resource: number, out: number[]): boolean {
  const r = new ProtoReader(buf, start, end);
  let traceIdAt = -1;
  let spanIdOk = false;
  let root = true;
  let startMs = 0;
  let endMs = -1;
  let error = false;
  while (!r.done) {
    const tag = r.varint();
    const wt = tag & 7;
    switch (tag >>> 3) {
      case 1: {
        expectWire(wt, WIRE_LEN, 'Span.trace_id');
        const at = r.lenStart();
        traceIdAt = r.fieldEnd - at === 16 ? at : -1;
        break;
      }
      case 2: {
        expectWire(wt, WIRE_LEN, 'Span.span_id');
        const at = r.lenStart();
        spanIdOk = r.fieldEnd - at === 8;
        break;
      }
      case 4: {
        expectWire(wt, WIRE_LEN, 'Span.parent_span_id');
        root = r.lenStart() === r.fieldEnd;
        break;
      }
      case 7:
        expectWire(wt, WIRE_FIXED64, 'Span.start_time_unix_nano');
        startMs = r.fixed64Approx() / 1e6;
        break;
      case 8:
        expectWire(wt, WIRE_FIXED64, 'Span.end_time_unix_nano');
        endMs = r.fixed64Approx() / 1e6;
        break;
      case 15: {
        expectWire(wt, WIRE_LEN, 'Span.status');
        const at = r.lenStart();
        error = statusOf(buf, at, r.fieldEnd).code === 2;
        break;
      }
      default:
        r.skip(wt);
    }
  }
  if (traceIdAt < 0 || !spanIdOk) return false;
  out.push(start, end, traceIdAt, startMs, endMs < 0 ? startMs : endMs, (error ? ERROR : 0) | (root ? ROOT : 0), resource);
  return true;
}

/** A Span message decoded in full (what GET /api/traces/:id shows). */
export function decodeSpan(buf: Buffer, start: number, end: number, res: SpanResource): StoredSpan {
  const r = new ProtoReader(buf, start, end);
  const span: StoredSpan = {
    traceId: '',
    spanId: '',
    parentSpanId: null,
    service: res.service,
    instance: res.instance,
    name: '',
    kind: 'UNSPECIFIED',
    startTimeUnixNano: '0',
    endTimeUnixNano: '',
    status: 'UNSET',
    attributes: {},
  };
  let attributes = 0;
  while (!r.done) {
    const tag = r.varint();
    const wt = tag & 7;
    const field = tag >>> 3;
    // The wire types of the fields read on arrival were checked then; the others are here.
    if ((field === 5 || field === 9) && wt !== WIRE_LEN) {
      r.skip(wt);
      continue;
    }
    if (field === 6 && wt !== WIRE_VARINT) {
      r.skip(wt);
      continue;
    }
    switch (field) {
      case 1:
        span.traceId = r.hex();
        break;
      case 2:
        span.spanId = r.hex();
        break;
      case 4: {
        const parent = r.hex();
        span.parentSpanId = parent === '' ? null : parent;
        break;
      }
      case 5:
        span.name = r.string().slice(0, SPAN_LIMITS.nameChars);
        break;
      case 6:
        span.kind = KINDS[r.varint()] ?? 'UNSPECIFIED';
        break;
      case 7: {
        const t = r.fixed64();
        span.startTimeUnixNano = fixed64ToDecimal(t.lo, t.hi);
        break;
      }
      case 8: {
        const t = r.fixed64();
        span.endTimeUnixNano = fixed64ToDecimal(t.lo, t.hi);
        break;
      }
      case 9: {
        const at = r.len();
        if (attributes++ >= SPAN_LIMITS.attributes) break;
        try {
          const kv = keyValue(buf, at.start, at.end);
          if (kv) span.attributes[kv[0]] = kv[1];
        } catch (err) {
          // An attribute that is not well-formed is left out; the span is still shown.
          if (!(err instanceof ProtoError)) throw err;
        }
        break;
      }
      case 15: {
        const at = r.len();
        const st = statusOf(buf, at.start, at.end);
        span.status = st.code === 2 ? 'ERROR' : st.code === 1 ? 'OK' : 'UNSET';
        if (st.message) span.statusMessage = st.message.slice(0, SPAN_LIMITS.statusMessageChars);
        break;
      }
      default:
        r.skip(wt);
    }
  }
  if (span.endTimeUnixNano === '') span.endTimeUnixNano = span.startTimeUnixNano;
  return span;
}

/** Calls `fn` with the bounds of every occurrence of the message field `field` between `start` and `end`; other fields are skipped. */
function eachMessage(buf: Buffer, start: number, end: number, field: number, what: string, fn: (start: number, end: number) => void): void {
  const r = new ProtoReader(buf, start, end);
  while (!r.done) {
    const tag = r.varint();
    if (tag >>> 3 !== field) {
      r.skip(tag & 7);
      continue;
    }
    expectWire(tag & 7, WIRE_LEN, what);
    const at = r.lenStart();
    fn(at, r.fieldEnd);
  }
}

/** A span's encoding above this is left out (Concord's spans take ~150 bytes). */
export const MAX_SPAN_BYTES = 16 * 1024;

/**
 * The spans of an ExportTraceServiceRequest, as received spans pointing into `buf`. Spans whose
 * ids have the wrong length, or whose encoding passes MAX_SPAN_BYTES, are left out; bytes that
 * are not a well-formed request throw ProtoError, before anything is returned (the receiver then
 * stores nothing of them).
 */
export function indexOtlpProto(buf: Buffer): ReceivedSpans {
  const resources: SpanResource[] = [];
  const spans: number[] = [];
  eachMessage(buf, 0, buf.length, 1, 'ExportTraceServiceRequest.resource_spans', (rsStart, rsEnd) => {
    // A message's fields may come in any order: the resource is read before the spans use it.
    const r = new ProtoReader(buf, rsStart, rsEnd);
    let res: SpanResource = { service: 'unknown', instance: '' };
    const scopes: Array<{ start: number; end: number }> = [];
    while (!r.done) {
      const t = r.varint();
      const field = t >>> 3;
      if (field === 1 || field === 2) {
        expectWire(t & 7, WIRE_LEN, field === 1 ? 'ResourceSpans.resource' : 'ResourceSpans.scope_spans');
        const at = r.len();
        if (field === 1) res = resourceOf(buf, at.start, at.end);
        else scopes.push(at);
      } else r.skip(t & 7);
    }
    const resource = resources.push(res) - 1;
    for (const ss of scopes) {
      eachMessage(buf, ss.start, ss.end, 2, 'ScopeSpans.spans', (start, end) => {
        if (end - start <= MAX_SPAN_BYTES) indexSpan(buf, start, end, resource, spans);
      });
    }
  });
  return { buf, resources, spans };
}

/** Every span of `received`, decoded in full. */
export function decodeReceived(received: ReceivedSpans): StoredSpan[] {
  const { buf, spans, resources } = received;
  const out: StoredSpan[] = [];
  for (let i = 0; i < spans.length; i += RECEIVED_FIELDS) {
    out.push(decodeSpan(buf, spans[i + R_START] as number, spans[i + R_END] as number, resources[spans[i + R_RESOURCE] as number] as SpanResource));
  }
  return out;
}

const KIND_NUMBER = new Map(KINDS.map((k, i) => [k, i]));
const TWO_32 = 4_294_967_296n;

const MAX_FIXED64 = (1n << 64n) - 1n;

/** A decimal count of nanoseconds (1–20 digits, checked on arrival) as fixed64 halves; above 2⁶⁴ − 1, that. */
function decimalToFixed64(decimal: string): { lo: number; hi: number } {
  let v = BigInt(decimal);
  if (v > MAX_FIXED64) v = MAX_FIXED64;
  return { lo: Number(v % TWO_32), hi: Number(v / TWO_32) };
}

/**
 * Spans decoded from OTLP/JSON, encoded as OTLP `Span` messages: the one form the store keeps.
 * decodeSpan gives each back as it was.
 */
export function encodeStored(stored: readonly StoredSpan[]): ReceivedSpans {
  const w = new ProtoWriter(256 * Math.max(1, stored.length));
  const resources: SpanResource[] = [];
  const resourceIndex = new Map<string, number>();
  const marks: number[] = [];
  for (const s of stored) {
    const key = `${s.service}\n${s.instance}`;
    let resource = resourceIndex.get(key);
    if (resource === undefined) {
      resource = resources.push({ service: s.service, instance: s.instance }) - 1;
      resourceIndex.set(key, resource);
    }
    const start = w.pos;
    w.hex(1, s.traceId);
    w.hex(2, s.spanId);
    if (s.parentSpanId) w.hex(4, s.parentSpanId);
    w.string(5, s.name);
    w.uint(6, KIND_NUMBER.get(s.kind) ?? 0);
    const st = decimalToFixed64(s.startTimeUnixNano);
    w.fixed64(7, st.lo, st.hi);
    const en = decimalToFixed64(s.endTimeUnixNano);
    w.fixed64(8, en.lo, en.hi);
    writeKeyValues(w, 9, s.attributes);
    if (s.status !== 'UNSET' || s.statusMessage) {
      const status = w.begin(15);
      if (s.statusMessage) w.string(2, s.statusMessage);
      w.uint(3, s.status === 'ERROR' ? 2 : s.status === 'OK' ? 1 : 0);
      w.end(status);
    }
    marks.push(start, w.pos, resource);
  }
  const buf = Buffer.from(w.bytes());
  const spans: number[] = [];
  for (let i = 0; i < marks.length; i += 3) indexSpan(buf, marks[i] as number, marks[i + 1] as number, marks[i + 2] as number, spans);
  return { buf, resources, spans };
}
