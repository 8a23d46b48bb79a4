/** Orders a trace's spans for a waterfall: depth-first by start time, with depth and offsets. Pure. */
import { nanosToMs } from './format';
import type { Span } from './types';

export interface WaterfallRow {
  span: Span;
  depth: number;
  /** Milliseconds from the trace's start. */
  startMs: number;
  durationMs: number;
}

export function waterfall(spans: readonly Span[]): { rows: WaterfallRow[]; totalMs: number; startMs: number } {
  if (spans.length === 0) return { rows: [], totalMs: 0, startMs: 0 };
  const start = Math.min(...spans.map((s) => nanosToMs(s.startTimeUnixNano)));
  const end = Math.max(...spans.map((s) => nanosToMs(s.endTimeUnixNano)));
  const ids = new Set(spans.map((s) => s.spanId));
  const children = new Map<string, Span[]>();
  const roots: Span[] = [];
  for (const s of spans) {
    if (s.parentSpanId && ids.has(s.parentSpanId) && s.parentSpanId !== s.spanId) {
      const list = children.get(s.parentSpanId) ?? [];
      list.push(s);
      children.set(s.parentSpanId, list);
    } else roots.push(s);
  }
  const byStart = (a: Span, b: Span) => nanosToMs(a.startTimeUnixNano) - nanosToMs(b.startTimeUnixNano);
  const rows: WaterfallRow[] = [];
  const seen = new Set<string>();
  // Iterative depth-first walk (a malformed trace may nest deeply or loop).
  const stack: Array<{ span: Span; depth: number }> = roots
    .sort(byStart)
    .reverse()
    .map((span) => ({ span, depth: 0 }));
  while (stack.length > 0) {
    const { span, depth } = stack.pop() as { span: Span; depth: number };
    if (seen.has(span.spanId)) continue;
    seen.add(span.spanId);
    const s = nanosToMs(span.startTimeUnixNano);
    rows.push({ span, depth, startMs: s - start, durationMs: Math.max(0, nanosToMs(span.endTimeUnixNano) - s) });
    const kids = (children.get(span.spanId) ?? []).slice().sort(byStart).reverse();
    for (const k of kids) stack.push({ span: k, depth: depth + 1 });
  }
  return { rows, totalMs: Math.max(end - start, 0.001), startMs: start };
}
