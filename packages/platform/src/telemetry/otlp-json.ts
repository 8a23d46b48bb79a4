/**
 * A lean OTLP/HTTP JSON span exporter for the control plane's own trace store (the default
 * destination). It writes the export request straight from the SDK's finished spans, leaving out
 * what OTLP/JSON lets a sender omit (empty lists, zero counts, an unset status), with ids and
 * times in the OTLP/JSON forms (hex ids, decimal nanosecond strings). The SDK's exporter builds
 * an intermediate request object first; with it, serialization was the largest single item of
 * tracing in the order process's profile.
 *
 * A collector named by OTEL_EXPORTER_OTLP_* keeps the SDK's exporter (its headers, compression
 * and retry settings come from the same environment variables).
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Attributes, AttributeValue, HrTime } from '@opentelemetry/api';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';

/** One export's spans at most; larger batches are sent in parts. */
export const MAX_SPANS_PER_REQUEST = 1024;

function nanos(t: HrTime): string {
  return t[0] === 0 ? String(t[1]) : `${t[0]}${String(t[1]).padStart(9, '0')}`;
}

function anyValue(v: AttributeValue | undefined): unknown {
  switch (typeof v) {
    case 'string':
      return { stringValue: v };
    case 'boolean':
      return { boolValue: v };
    case 'number':
      return Number.isInteger(v) ? { intValue: v } : { doubleValue: v };
    default:
      if (Array.isArray(v)) return { arrayValue: { values: (v as unknown[]).map((x) => anyValue(x as AttributeValue)) } };
      return {};
  }
}

function keyValues(attrs: Attributes): Array<{ key: string; value: unknown }> | undefined {
  let out: Array<{ key: string; value: unknown }> | undefined;
  for (const key in attrs) {
    const v = attrs[key];
    if (v === undefined || v === null) continue;
    (out ??= []).push({ key, value: anyValue(v) });
  }
  return out;
}

/** The OTLP/JSON span of a finished SDK span (SpanKind + 1 is OTLP's numbering). */
export function otlpSpan(s: ReadableSpan): Record<string, unknown> {
  const sc = s.spanContext();
  const out: Record<string, unknown> = {
    traceId: sc.traceId,
    spanId: sc.spanId,
    name: s.name,
    kind: s.kind + 1,
    startTimeUnixNano: nanos(s.startTime),
    endTimeUnixNano: nanos(s.endTime),
  };
  const parent = s.parentSpanContext?.spanId;
  if (parent) out.parentSpanId = parent;
  const attributes = keyValues(s.attributes);
  if (attributes) out.attributes = attributes;
  if (s.status.code !== 0) out.status = s.status.message ? { code: s.status.code, message: s.status.message } : { code: s.status.code };
  if (s.events.length) out.events = s.events.map((e) => ({ name: e.name, timeUnixNano: nanos(e.time), attributes: e.attributes ? keyValues(e.attributes) : undefined }));
  if (s.links.length) out.links = s.links.map((l) => ({ traceId: l.context.traceId, spanId: l.context.spanId, attributes: l.attributes ? keyValues(l.attributes) : undefined }));
  if (s.droppedAttributesCount) out.droppedAttributesCount = s.droppedAttributesCount;
  return out;
}

/** An ExportTraceServiceRequest in OTLP/JSON: spans grouped by resource and scope. */
export function otlpRequest(spans: readonly ReadableSpan[]): string {
  const byResource = new Map<unknown, { resource: ReadableSpan['resource']; scopes: Map<string, { scope: ReadableSpan['instrumentationScope']; spans: unknown[] }> }>();
  for (const s of spans) {
    let r = byResource.get(s.resource);
    if (!r) byResource.set(s.resource, (r = { resource: s.resource, scopes: new Map() }));
    const key = `${s.instrumentationScope.name}\u0000${s.instrumentationScope.version ?? ''}`;
    let sc = r.scopes.get(key);
    if (!sc) r.scopes.set(key, (sc = { scope: s.instrumentationScope, spans: [] }));
    sc.spans.push(otlpSpan(s));
  }
  return JSON.stringify({
    resourceSpans: [...byResource.values()].map((r) => ({
      resource: { attributes: keyValues(r.resource.attributes) ?? [] },
      scopeSpans: [...r.scopes.values()].map((sc) => ({ scope: { name: sc.scope.name, version: sc.scope.version }, spans: sc.spans })),
    })),
  });
}

/** Posts OTLP/JSON to `url`; a failed or refused export is dropped (the processor counts it). */
export class OtlpJsonExporter implements SpanExporter {
  private stopped = false;
  private readonly inFlight = new Set<Promise<unknown>>();

  private readonly url: URL;
  private readonly agent: HttpAgent;

  constructor(private readonly opts: { url: string; timeoutMs: number; onError?: (err: Error) => void }) {
    this.url = new URL(opts.url);
    this.agent = this.url.protocol === 'https:' ? new HttpsAgent({ keepAlive: true, maxSockets: 2 }) : new HttpAgent({ keepAlive: true, maxSockets: 2 });
  }

  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    if (this.stopped) {
      done({ code: ExportResultCode.FAILED, error: new Error('exporter is shut down') });
      return;
    }
    const parts: Array<Promise<void>> = [];
    for (let i = 0; i < spans.length; i += MAX_SPANS_PER_REQUEST) parts.push(this.post(otlpRequest(spans.slice(i, i + MAX_SPANS_PER_REQUEST))));
    const all = Promise.all(parts).then(
      () => done({ code: ExportResultCode.SUCCESS }),
      (err: Error) => {
        try {
          this.opts.onError?.(err);
        } catch {
          /* a failing error report must not keep the processor waiting */
        }
        done({ code: ExportResultCode.FAILED, error: err });
      },
    );
    this.inFlight.add(all);
    void all.finally(() => this.inFlight.delete(all));
  }

  /** node:http with a kept-alive connection: fetch's stream machinery cost more than the send itself (measured). */
  private async post(body: string): Promise<void> {
    try {
      await this.postOnce(body);
    } catch (err) {
      // A kept-alive connection the receiver had just closed: once more on a fresh one.
      if ((err as { reusedSocket?: boolean }).reusedSocket && (err as NodeJS.ErrnoException).code === 'ECONNRESET') await this.postOnce(body);
      else throw err;
    }
  }

  private postOnce(body: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const payload = Buffer.from(body, 'utf8');
      const req = (this.url.protocol === 'https:' ? httpsRequest : httpRequest)(
        this.url,
        { method: 'POST', agent: this.agent, timeout: this.opts.timeoutMs, headers: { 'content-type': 'application/json', 'content-length': payload.length } },
        (res) => {
          res.resume();
          res.on('end', () => (res.statusCode !== undefined && res.statusCode < 300 ? resolve() : reject(new Error(`OTLP export to ${this.opts.url} answered ${res.statusCode}`))));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`OTLP export to ${this.opts.url} timed out after ${this.opts.timeoutMs} ms`)));
      req.on('error', (err) => reject(Object.assign(err, { reusedSocket: req.reusedSocket })));
      req.end(payload);
    });
  }

  async forceFlush(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }

  async shutdown(): Promise<void> {
    this.stopped = true;
    await this.forceFlush();
    this.agent.destroy();
  }
}
