/**
 * The control plane's trace store: spans received over OTLP/HTTP (protobuf or JSON), grouped by
 * trace, bounded in traces, spans and age. Pure apart from the clock passed in.
 *
 * A span is kept as a record: what the index needs (its trace, service, times, error status,
 * whether it has a parent) plus a way to the full span. A span that arrived as protobuf stays
 * in its request's bytes and is decoded only when a query shows it, so receiving costs little
 * and a stored span holds no per-attribute objects for the collector to trace.
 */
export interface StoredSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  service: string;
  instance: string;
  name: string;
  kind: string;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  status: 'UNSET' | 'OK' | 'ERROR';
  statusMessage?: string;
  attributes: Record<string, string | number | boolean>;
}

/** One stored span. Times in milliseconds since the epoch, as doubles (within a microsecond). */
export interface SpanRecord {
  readonly traceId: string;
  readonly service: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly error: boolean;
  /** The span has no parent id. */
  readonly root: boolean;
  /** What the span holds in memory, about (its encoding, for a span received as protobuf). */
  readonly bytes: number;
  /** The full span. */
  span(): StoredSpan;
}

/** A record of a span decoded on arrival (OTLP/JSON). */
export function recordOf(s: StoredSpan): SpanRecord {
  const startMs = Number(s.startTimeUnixNano) / 1e6;
  let bytes = 200 + s.name.length + (s.statusMessage?.length ?? 0);
  for (const k in s.attributes) bytes += 40 + k.length + String(s.attributes[k]).length;
  return { traceId: s.traceId, service: s.service, startMs, endMs: Number(s.endTimeUnixNano) / 1e6, error: s.status === 'ERROR', root: s.parentSpanId === null, bytes, span: () => s };
}

interface TraceEntry {
  spans: SpanRecord[];
  bytes: number;
  startMs: number;
  endMs: number;
  services: Set<string>;
  error: boolean;
  receivedAtMs: number;
  /** The root's service and name and the exact start, worked out when first asked (spans arriving clear it). */
  head: { rootService: string; rootName: string; startTimeUnixNano: string } | null;
}

/** To the microsecond: the times are doubles of ~1.8e12 ms, whose difference carries rounding noise below that. */
function durationMsOf(t: TraceEntry): number {
  return Math.round((t.endMs - t.startMs) * 1000) / 1000;
}

function byStart(a: StoredSpan, b: StoredSpan): number {
  const x = BigInt(a.startTimeUnixNano);
  const y = BigInt(b.startTimeUnixNano);
  return x < y ? -1 : x > y ? 1 : 0;
}

export interface TraceSummary {
  traceId: string;
  rootService: string;
  rootName: string;
  startTimeUnixNano: string;
  durationMs: number;
  spanCount: number;
  services: string[];
  status: 'OK' | 'ERROR';
}

export interface TraceLimits {
  maxTraces: number;
  /** Spans kept in all (memory is what spans cost; the oldest traces go first). */
  maxSpans: number;
  /** The spans' bytes kept in all: a bound on memory whatever the spans hold. */
  maxBytes: number;
  maxSpansPerTrace: number;
  retentionMs: number;
}

export const DEFAULT_TRACE_LIMITS: TraceLimits = { maxTraces: 20_000, maxSpans: 30_000, maxBytes: 32 * 1_048_576, maxSpansPerTrace: 2000, retentionMs: 60 * 60_000 };

export class TraceStore {
  private readonly traces = new Map<string, TraceEntry>();
  private spanCount = 0;
  private byteCount = 0;
  dropped = 0;

  constructor(private readonly limits: TraceLimits = DEFAULT_TRACE_LIMITS) {}

  get size(): number {
    return this.traces.size;
  }
  get spans(): number {
    return this.spanCount;
  }
  /** The stored spans' bytes (SpanRecord.bytes). */
  get bytes(): number {
    return this.byteCount;
  }

  /** Spans decoded on arrival (OTLP/JSON, tests). */
  add(spans: readonly StoredSpan[], nowMs: number): void {
    this.addRecords(spans.map(recordOf), nowMs);
  }

  addRecords(records: readonly SpanRecord[], nowMs: number): void {
    for (const s of records) {
      let t = this.traces.get(s.traceId);
      if (!t) {
        t = { spans: [], bytes: 0, startMs: s.startMs, endMs: s.endMs, services: new Set(), error: false, receivedAtMs: nowMs, head: null };
        this.traces.set(s.traceId, t);
      }
      if (t.spans.length >= this.limits.maxSpansPerTrace) {
        this.dropped++;
        continue;
      }
      t.spans.push(s);
      t.head = null;
      this.spanCount++;
      t.bytes += s.bytes;
      this.byteCount += s.bytes;
      if (s.startMs < t.startMs) t.startMs = s.startMs;
      if (s.endMs > t.endMs) t.endMs = s.endMs;
      t.services.add(s.service);
      if (s.error) t.error = true;
    }
    this.evict(nowMs);
  }

  private evict(nowMs: number): void {
    for (const [id, t] of this.traces) {
      const tooMany = this.traces.size > this.limits.maxTraces || this.spanCount > this.limits.maxSpans || this.byteCount > this.limits.maxBytes;
      const tooOld = nowMs - t.receivedAtMs > this.limits.retentionMs;
      if (!tooMany && !tooOld) break; // insertion order: the rest are newer
      this.traces.delete(id);
      this.spanCount -= t.spans.length;
      this.byteCount -= t.bytes;
    }
  }

  get(traceId: string): { traceId: string; spans: StoredSpan[] } | null {
    const t = this.traces.get(traceId);
    if (!t) return null;
    return { traceId, spans: t.spans.map((r) => r.span()).sort(byStart) };
  }

  /**
   * The root is the earliest span with no parent; a trace continued from outside (its first
   * span's parent is elsewhere) has none, and then it is the earliest span whose parent is not in
   * the trace. Only the spans needed are decoded.
   */
  private headOf(t: TraceEntry): NonNullable<TraceEntry['head']> {
    let first: SpanRecord | undefined;
    let root: SpanRecord | undefined;
    for (const r of t.spans) {
      if (!first || r.startMs < first.startMs) first = r;
      if (r.root && (!root || r.startMs < root.startMs)) root = r;
    }
    let rootSpan = root?.span();
    if (!rootSpan) {
      const spans = t.spans.map((r) => r.span());
      const ids = new Set(spans.map((s) => s.spanId));
      rootSpan = spans.filter((s) => !s.parentSpanId || !ids.has(s.parentSpanId)).sort(byStart)[0] ?? spans[0];
    }
    return { rootService: rootSpan?.service ?? '', rootName: rootSpan?.name ?? '', startTimeUnixNano: first?.span().startTimeUnixNano ?? '0' };
  }

  private summarize(id: string, t: TraceEntry): TraceSummary {
    t.head ??= this.headOf(t);
    return {
      traceId: id,
      rootService: t.head.rootService,
      rootName: t.head.rootName,
      startTimeUnixNano: t.head.startTimeUnixNano,
      durationMs: durationMsOf(t),
      spanCount: t.spans.length,
      services: [...t.services].sort(),
      status: t.error ? 'ERROR' : 'OK',
    };
  }

  /** Newest first. */
  search(q: { service?: string; status?: 'OK' | 'ERROR'; minDurationMs?: number; maxDurationMs?: number; limit: number; name?: string }): TraceSummary[] {
    const out: TraceSummary[] = [];
    const entries = [...this.traces.entries()];
    for (let i = entries.length - 1; i >= 0 && out.length < q.limit; i--) {
      const [id, t] = entries[i] as [string, TraceEntry];
      if (q.service && !t.services.has(q.service)) continue;
      if (q.status === 'ERROR' && !t.error) continue;
      if (q.status === 'OK' && t.error) continue;
      const durationMs = durationMsOf(t);
      if (q.minDurationMs !== undefined && durationMs < q.minDurationMs) continue;
      if (q.maxDurationMs !== undefined && durationMs > q.maxDurationMs) continue;
      const summary = this.summarize(id, t);
      if (q.name && !summary.rootName.includes(q.name)) continue;
      out.push(summary);
    }
    return out;
  }
}
