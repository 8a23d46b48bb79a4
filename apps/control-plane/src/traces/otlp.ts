/**
 * Decodes an OTLP/HTTP JSON trace export (ExportTraceServiceRequest) into stored spans.
 * Ids arrive hex-encoded (the OTLP/JSON rule); base64 from lenient exporters is accepted too.
 */
import type { StoredSpan } from './store.js';

/** OTLP's span kinds by number. */
export const KINDS = ['UNSPECIFIED', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'];
/** What one span keeps at most, whatever the encoding it arrived in. */
export const SPAN_LIMITS = { attributes: 64, keyChars: 200, stringValueChars: 1000, nameChars: 300, statusMessageChars: 300 } as const;

type AnyValue = { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean };
type KeyValue = { key: string; value?: AnyValue };

const HEX_ID: Record<number, RegExp> = { 8: /^[0-9a-fA-F]{16}$/, 16: /^[0-9a-fA-F]{32}$/ };

function id(v: unknown, bytes: 8 | 16): string | null {
  if (typeof v !== 'string' || v === '') return null;
  if ((HEX_ID[bytes] as RegExp).test(v)) return v.toLowerCase();
  const b = Buffer.from(v, 'base64');
  return b.length === bytes ? b.toString('hex') : null;
}

function value(v: AnyValue | undefined): string | number | boolean | undefined {
  if (!v) return undefined;
  if (v.stringValue !== undefined) return v.stringValue.slice(0, SPAN_LIMITS.stringValueChars);
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  return undefined;
}

function attrs(list: KeyValue[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of (list ?? []).slice(0, SPAN_LIMITS.attributes)) {
    const v = value(kv.value);
    if (typeof kv.key === 'string' && v !== undefined && kv.key !== '__proto__') out[kv.key.slice(0, SPAN_LIMITS.keyChars)] = v;
  }
  return out;
}

export class OtlpError extends Error {}

/**
 * An OTLP/JSON body as bytes. Plain JSON.parse: Fastify's parser also scans every body for
 * __proto__ and constructor keys, which was most of the parsing time of a span export (profiled),
 * and decodeOtlpJson copies only the fields it knows into fresh objects, so such keys are inert.
 */
export function decodeOtlpJsonBytes(bytes: Buffer): StoredSpan[] {
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new OtlpError('the body is not valid JSON');
  }
  return decodeOtlpJson(body);
}

export function decodeOtlpJson(body: unknown): StoredSpan[] {
  const rs = (body as { resourceSpans?: unknown })?.resourceSpans;
  if (!Array.isArray(rs)) throw new OtlpError('expected {"resourceSpans": [...]} (OTLP/HTTP JSON)');
  const out: StoredSpan[] = [];
  for (const r of rs as Array<{ resource?: { attributes?: KeyValue[] }; scopeSpans?: Array<{ spans?: unknown[] }> }>) {
    const res = attrs(r.resource?.attributes);
    const service = String(res['service.name'] ?? 'unknown');
    const instance = String(res['service.instance.id'] ?? '');
    for (const ss of r.scopeSpans ?? []) {
      for (const raw of ss.spans ?? []) {
        const s = raw as Record<string, unknown>;
        const traceId = id(s.traceId, 16);
        const spanId = id(s.spanId, 8);
        if (!traceId || !spanId) continue;
        const status = s.status as { code?: number | string; message?: string } | undefined;
        const code = status?.code === 2 || status?.code === 'STATUS_CODE_ERROR' ? 'ERROR' : status?.code === 1 || status?.code === 'STATUS_CODE_OK' ? 'OK' : 'UNSET';
        const span: StoredSpan = {
          traceId,
          spanId,
          parentSpanId: id(s.parentSpanId, 8),
          service,
          instance,
          name: String(s.name ?? '').slice(0, SPAN_LIMITS.nameChars),
          kind: typeof s.kind === 'number' ? (KINDS[s.kind] ?? 'UNSPECIFIED') : String(s.kind ?? 'UNSPECIFIED').replace('SPAN_KIND_', ''),
          startTimeUnixNano: String(s.startTimeUnixNano ?? '0'),
          endTimeUnixNano: String(s.endTimeUnixNano ?? s.startTimeUnixNano ?? '0'),
          status: code,
          attributes: attrs(s.attributes as KeyValue[] | undefined),
        };
        if (!/^\d{1,20}$/.test(span.startTimeUnixNano) || !/^\d{1,20}$/.test(span.endTimeUnixNano)) continue;
        if (status?.message) span.statusMessage = String(status.message).slice(0, SPAN_LIMITS.statusMessageChars);
        out.push(span);
      }
    }
  }
  return out;
}
