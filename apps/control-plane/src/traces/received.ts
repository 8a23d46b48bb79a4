/**
 * What an OTLP receiver hands the trace store: spans still as their encoded `Span` messages, with
 * the few fields the store indexes read out, in one flat array of numbers (no object per span).
 */
/** The resource a span came with (what the store shows of it). */
export interface SpanResource {
  service: string;
  instance: string;
}

/** Numbers per span in `ReceivedSpans.spans`, and their order. */
export const RECEIVED_FIELDS = 7;
export const R_START = 0;
export const R_END = 1;
/** Where the span's 16-byte trace id starts in `buf`. */
export const R_TRACE_ID_AT = 2;
export const R_START_MS = 3;
export const R_END_MS = 4;
/** ERROR | ROOT. */
export const R_FLAGS = 5;
/** An index into `resources`. */
export const R_RESOURCE = 6;
export const ERROR = 1;
export const ROOT = 2;

/**
 * Spans read by a receiver and not yet stored: each is the OTLP `Span` message at
 * `buf[start, end)`, with what the index needs read from it (RECEIVED_FIELDS numbers each, flat:
 * no object per span). The store copies the bytes; `buf` may be reused afterwards.
 */
export interface ReceivedSpans {
  buf: Buffer;
  resources: SpanResource[];
  spans: number[];
}

