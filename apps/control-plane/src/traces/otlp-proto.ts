/**
 * Reads an OTLP/HTTP protobuf trace export (ExportTraceServiceRequest) into span records that
 * point into the request's bytes. Receiving reads only what the store indexes (trace id, times,
 * whether there is a parent, error status) and checks the ids; the rest of a span (name,
 * attributes, kind) is decoded when a query asks for it. Unknown fields are skipped, as
 * protobuf allows.
 */
import { ProtoError, ProtoReader, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT, fixed64ToDecimal } from '@concord/core';
import { KINDS, SPAN_LIMITS } from './otlp.js';
import type { SpanRecord, StoredSpan } from './store.js';

export { ProtoError };

interface Resource {
  service: string;
  instance: string;
}

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

function resourceOf(buf: Buffer, start: number, end: number): Resource {
  const r = new ProtoReader(buf, start, end);
  const res: Resource = { service: 'unknown', instance: '' };
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

/**
 * A span kept as its bytes: the index fields read on arrival, the rest on demand. Even the
 * trace id stays in the bytes (the store keeps one string per trace, as its key).
 */
class ProtoSpanRecord implements SpanRecord {
  constructor(
    private buf: Buffer,
    private start: number,
    private end: number,
    private traceIdAt: number,
    private readonly resource: Resource,
    readonly startMs: number,
    readonly endMs: number,
    readonly error: boolean,
    readonly root: boolean,
  ) {}

  get traceId(): string {
    return this.buf.toString('hex', this.traceIdAt, this.traceIdAt + 16);
  }

  get bytes(): number {
    return this.end - this.start;
  }

  /** Copies the span's bytes to `to` at `at` and points there from now on. */
  moveTo(to: Buffer, at: number): void {
    this.buf.copy(to, at, this.start, this.end);
    this.traceIdAt += at - this.start;
    this.end = at + this.end - this.start;
    this.start = at;
    this.buf = to;
  }

  get service(): string {
    return this.resource.service;
  }

  span(): StoredSpan {
    return decodeSpan(this.buf, this.start, this.end, this.resource);
  }
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

/** Reads the index fields of one Span message; null when its ids are not 16 and 8 bytes. */
function indexSpan(buf: Buffer, start: number, end: number, res: Resource): ProtoSpanRecord | null {
  // Runs for every span received: no allocation but the record (lenStart, fixed64Approx).
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
  if (traceIdAt < 0 || !spanIdOk) return null;
  return new ProtoSpanRecord(buf, start, end, traceIdAt, res, startMs, endMs < 0 ? startMs : endMs, error, root);
}

/** A Span message decoded in full (what GET /api/traces/:id shows). */
export function decodeSpan(buf: Buffer, start: number, end: number, res: Resource): StoredSpan {
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
 * The spans of an ExportTraceServiceRequest as records. Their bytes are copied, together, into
 * one buffer of their own: a stored span then keeps only its own bytes alive, not the request's
 * (padding, oversized spans, a pooled slab). Spans whose ids have the wrong length, or whose
 * encoding passes MAX_SPAN_BYTES, are left out; bytes that are not a well-formed request throw
 * ProtoError.
 */
export function indexOtlpProto(buf: Buffer): SpanRecord[] {
  const out: ProtoSpanRecord[] = [];
  eachMessage(buf, 0, buf.length, 1, 'ExportTraceServiceRequest.resource_spans', (rsStart, rsEnd) => {
    // A message's fields may come in any order: the resource is read before the spans use it.
    const r = new ProtoReader(buf, rsStart, rsEnd);
    let res: Resource = { service: 'unknown', instance: '' };
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
    for (const ss of scopes) {
      eachMessage(buf, ss.start, ss.end, 2, 'ScopeSpans.spans', (start, end) => {
        if (end - start > MAX_SPAN_BYTES) return;
        const rec = indexSpan(buf, start, end, res);
        if (rec) out.push(rec);
      });
    }
  });
  let total = 0;
  for (const r of out) total += r.bytes;
  const own = Buffer.allocUnsafeSlow(total);
  let at = 0;
  for (const r of out) {
    const n = r.bytes;
    r.moveTo(own, at);
    at += n;
  }
  return out;
}
