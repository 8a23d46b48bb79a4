/**
 * The control plane's trace store: spans received over OTLP/HTTP (JSON), grouped by trace,
 * bounded in traces, spans and age. Pure apart from the clock passed in.
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

interface TraceEntry {
  spans: StoredSpan[];
  startNs: bigint;
  endNs: bigint;
  services: Set<string>;
  error: boolean;
  receivedAtMs: number;
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
  maxSpansPerTrace: number;
  retentionMs: number;
}

export const DEFAULT_TRACE_LIMITS: TraceLimits = { maxTraces: 20_000, maxSpans: 30_000, maxSpansPerTrace: 2000, retentionMs: 60 * 60_000 };

export class TraceStore {
  private readonly traces = new Map<string, TraceEntry>();
  private spanCount = 0;
  dropped = 0;

  constructor(private readonly limits: TraceLimits = DEFAULT_TRACE_LIMITS) {}

  get size(): number {
    return this.traces.size;
  }
  get spans(): number {
    return this.spanCount;
  }

  add(spans: StoredSpan[], nowMs: number): void {
    for (const s of spans) {
      let t = this.traces.get(s.traceId);
      if (!t) {
        t = { spans: [], startNs: BigInt(s.startTimeUnixNano), endNs: BigInt(s.endTimeUnixNano), services: new Set(), error: false, receivedAtMs: nowMs };
        this.traces.set(s.traceId, t);
      }
      if (t.spans.length >= this.limits.maxSpansPerTrace) {
        this.dropped++;
        continue;
      }
      t.spans.push(s);
      this.spanCount++;
      const start = BigInt(s.startTimeUnixNano);
      const end = BigInt(s.endTimeUnixNano);
      if (start < t.startNs) t.startNs = start;
      if (end > t.endNs) t.endNs = end;
      t.services.add(s.service);
      if (s.status === 'ERROR') t.error = true;
    }
    this.evict(nowMs);
  }

  private evict(nowMs: number): void {
    for (const [id, t] of this.traces) {
      const tooMany = this.traces.size > this.limits.maxTraces || this.spanCount > this.limits.maxSpans;
      const tooOld = nowMs - t.receivedAtMs > this.limits.retentionMs;
      if (!tooMany && !tooOld) break; // insertion order: the rest are newer
      this.traces.delete(id);
      this.spanCount -= t.spans.length;
    }
  }

  get(traceId: string): { traceId: string; spans: StoredSpan[] } | null {
    const t = this.traces.get(traceId);
    if (!t) return null;
    const spans = [...t.spans].sort((a, b) => (BigInt(a.startTimeUnixNano) < BigInt(b.startTimeUnixNano) ? -1 : 1));
    return { traceId, spans };
  }

  private summarize(id: string, t: TraceEntry): TraceSummary {
    const ids = new Set(t.spans.map((s) => s.spanId));
    const roots = t.spans.filter((s) => !s.parentSpanId || !ids.has(s.parentSpanId));
    const root = roots.sort((a, b) => (BigInt(a.startTimeUnixNano) < BigInt(b.startTimeUnixNano) ? -1 : 1))[0] ?? t.spans[0];
    return {
      traceId: id,
      rootService: root?.service ?? '',
      rootName: root?.name ?? '',
      startTimeUnixNano: t.startNs.toString(),
      durationMs: Number(t.endNs - t.startNs) / 1e6,
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
      const durationMs = Number(t.endNs - t.startNs) / 1e6;
      if (q.minDurationMs !== undefined && durationMs < q.minDurationMs) continue;
      if (q.maxDurationMs !== undefined && durationMs > q.maxDurationMs) continue;
      const summary = this.summarize(id, t);
      if (q.name && !summary.rootName.includes(q.name)) continue;
      out.push(summary);
    }
    return out;
  }
}
