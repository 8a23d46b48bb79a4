/**
 * The control plane's trace store: spans received over OTLP/HTTP (protobuf or JSON), grouped by
 * trace, bounded in traces, spans, bytes and age. Pure apart from the clock passed in.
 *
 * Nothing in it is a JavaScript object per span or per trace. A span is its OTLP `Span` message,
 * copied into one byte ring (the arena), plus a row of typed-array columns (where its bytes are,
 * its times, flags, resource, trace, the next span of its trace). A trace is a row of columns too,
 * found through an open-addressing table keyed by the trace id's 16 bytes. Why: the store turns
 * over every few seconds under load (30,000 spans at ~9,000 spans/s), so each record lived long
 * enough to be promoted to V8's old generation and died there. With one object per span, the
 * control plane's garbage collection cost more than everything else it did for the spans
 * (profiled with perf: of the control plane's extra CPU at 100 % sampling, marking, sweeping and
 * scavenging took the largest share). Columns are allocated once, twice over (a compaction
 * writes into the spare set); the arena starts at 1 MiB and doubles up to its cap.
 *
 * Spans and traces each take the next row of a ring. The bounds hold on what is stored: when a
 * span would pass one, the oldest traces go, whole (the oldest traces go first, as the README
 * says). An evicted trace's spans leave holes in the span ring; holes at its tail are given back
 * at once, and the rest by compaction, which copies the stored spans to the front of the spare
 * columns and a fresh arena (for that moment, the old arena and the new one are both held). The
 * ring has a quarter more rows and bytes than the bounds for holes, so a compaction frees at
 * least that quarter and its cost spreads over the spans that filled it.
 */
import { invariant } from '@concord/core';
import { decodeSpan, encodeStored } from './otlp-proto.js';
import { ERROR, R_END, R_END_MS, R_FLAGS, R_RESOURCE, R_START, R_START_MS, R_TRACE_ID_AT, RECEIVED_FIELDS, ROOT, type ReceivedSpans, type SpanResource } from './received.js';

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

/** To the microsecond: the times are doubles of ~1.8e12 ms, whose difference carries rounding noise below that. */
function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
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
  /** The spans' bytes kept in all: a bound on memory whatever the spans hold. At most MAX_ARENA_BYTES. */
  maxBytes: number;
  maxSpansPerTrace: number;
  retentionMs: number;
}

export const DEFAULT_TRACE_LIMITS: TraceLimits = { maxTraces: 20_000, maxSpans: 30_000, maxBytes: 32 * 1_048_576, maxSpansPerTrace: 2000, retentionMs: 60 * 60_000 };

/** maxBytes at most: offsets are 32-bit, and the arena keeps a quarter more for holes. */
export const MAX_ARENA_BYTES = 2048 * 1_048_576;
/** The arena's first size; it doubles as spans need room, up to maxBytes. */
const FIRST_ARENA_BYTES = 1_048_576;
/** Service names that get a bit in a trace's service set; a trace with any other is searched span by span. */
const SERVICE_BITS = 64;

const LIVE = 4;
/** A trace holding a service without a bit. */
const OTHER_SERVICE = 8;
const NONE = -1;
const TRACE_ID = /^[0-9a-f]{32}$/;

interface ResourceRow extends SpanResource {
  /** The bit of its service in a trace's service set, or -1. */
  bit: number;
  /** Live spans pointing at it: at 0 the row is freed. */
  refs: number;
  key: string;
}

/** A 32-bit hash of the 16 bytes at `at`, seeded (trace ids are chosen by clients). */
function hashId(bytes: Uint8Array, at: number, seed: number): number {
  let h = seed;
  for (let i = 0; i < 16; i += 4) {
    const w = (bytes[at + i] as number) | ((bytes[at + i + 1] as number) << 8) | ((bytes[at + i + 2] as number) << 16) | ((bytes[at + i + 3] as number) << 24);
    h = Math.imul(h ^ w, 0x9e3779b1);
    h ^= h >>> 15;
  }
  return h >>> 0;
}

/** The columns of `n` span rows. */
function spanRows(n: number) {
  return {
    /** Where the span's bytes start in the arena, and how many. */
    off: new Uint32Array(n),
    len: new Uint32Array(n),
    startMs: new Float64Array(n),
    endMs: new Float64Array(n),
    /** LIVE | ERROR | ROOT. */
    flags: new Uint8Array(n),
    res: new Int32Array(n),
    trace: new Int32Array(n),
    /** The next span row of the same trace, or NONE. */
    next: new Int32Array(n),
  };
}
type SpanRows = ReturnType<typeof spanRows>;

export class TraceStore {
  private readonly limits: TraceLimits;
  /** Span rows: a ring from sTail (oldest reserved) to sHead (next to take), of rowCap rows. */
  private rows: SpanRows;
  /** The columns a compaction writes into next (the previous ones, reused). */
  private spare: SpanRows;
  /** Old row → new row during a compaction. */
  private readonly moved: Int32Array;
  private readonly rowCap: number;
  /** The arena's largest size: maxBytes and a quarter for holes. */
  private readonly arenaCap: number;
  private sTail = 0;
  private sHead = 0;
  private sUsed = 0;
  // The arena: span bytes in row order, from the tail row's offset to writeAt, wrapping once.
  private arena: Buffer;
  private writeAt = 0;
  /** writeAt has wrapped to the arena's start while the tail row's bytes are still further on. */
  private wrapped = false;
  // Trace rows: a ring like the spans'.
  private readonly tId: Uint8Array;
  private readonly tFirst: Int32Array;
  private readonly tLast: Int32Array;
  private readonly tCount: Int32Array;
  private readonly tStartMs: Float64Array;
  private readonly tEndMs: Float64Array;
  private readonly tReceivedMs: Float64Array;
  private readonly tFlags: Uint8Array;
  private readonly tServicesLo: Uint32Array;
  private readonly tServicesHi: Uint32Array;
  private tTail = 0;
  private tHead = 0;
  private tUsed = 0;
  /** Trace id → trace row: open addressing with linear probing, NONE where empty. */
  private readonly table: Int32Array;
  private readonly tableMask: number;
  private readonly seed = (Math.random() * 0x1_0000_0000) >>> 0;
  private readonly resources: Array<ResourceRow | null> = [];
  private readonly resourceByKey = new Map<string, number>();
  private readonly freeResources: number[] = [];
  private readonly serviceBits = new Map<string, number>();
  private readonly serviceNames: string[] = [];
  private liveTraces = 0;
  private liveSpans = 0;
  private liveBytes = 0;
  /** Traces evicted so far (a row number found before an eviction may be stale after it). */
  private evictions = 0;
  /** Spans refused: a trace past maxSpansPerTrace, or a span larger than maxBytes. */
  dropped = 0;

  constructor(limits: TraceLimits = DEFAULT_TRACE_LIMITS) {
    invariant(limits.maxTraces >= 1 && limits.maxSpans >= 1 && limits.maxBytes >= 1 && limits.maxSpansPerTrace >= 1, 'trace store limits are positive');
    invariant(limits.maxBytes <= MAX_ARENA_BYTES, `the trace store holds at most ${MAX_ARENA_BYTES} bytes`);
    this.limits = limits;
    const T = limits.maxTraces;
    this.rowCap = limits.maxSpans + Math.max(16, Math.ceil(limits.maxSpans / 4));
    this.arenaCap = limits.maxBytes + Math.max(4096, Math.ceil(limits.maxBytes / 4));
    this.rows = spanRows(this.rowCap);
    this.spare = spanRows(this.rowCap);
    this.moved = new Int32Array(this.rowCap);
    this.arena = Buffer.allocUnsafeSlow(Math.min(this.arenaCap, FIRST_ARENA_BYTES));
    this.tId = new Uint8Array(T * 16);
    this.tFirst = new Int32Array(T);
    this.tLast = new Int32Array(T);
    this.tCount = new Int32Array(T);
    this.tStartMs = new Float64Array(T);
    this.tEndMs = new Float64Array(T);
    this.tReceivedMs = new Float64Array(T);
    this.tFlags = new Uint8Array(T);
    this.tServicesLo = new Uint32Array(T);
    this.tServicesHi = new Uint32Array(T);
    let size = 16;
    while (size < T * 2) size *= 2;
    this.table = new Int32Array(size).fill(NONE);
    this.tableMask = size - 1;
  }

  get size(): number {
    return this.liveTraces;
  }
  get spans(): number {
    return this.liveSpans;
  }
  /** The stored spans' bytes (their OTLP encoding). */
  get bytes(): number {
    return this.liveBytes;
  }

  /** Spans decoded elsewhere (OTLP/JSON, tests): stored as their OTLP encoding, like the rest. */
  add(spans: readonly StoredSpan[], nowMs: number): void {
    this.addReceived(encodeStored(spans), nowMs);
  }

  /** Spans a receiver read (see ReceivedSpans): their bytes are copied in. */
  addReceived(received: ReceivedSpans, nowMs: number): void {
    const { buf, spans } = received;
    invariant(spans.length % RECEIVED_FIELDS === 0, 'received spans come in rows of RECEIVED_FIELDS numbers');
    this.expire(nowMs);
    // The batch's resources, interned on first use. A row is checked before reuse: evictions
    // during the batch may have freed it.
    const rows: number[] = received.resources.map(() => NONE);
    for (let i = 0; i < spans.length; i += RECEIVED_FIELDS) {
      const start = spans[i + R_START] as number;
      const len = (spans[i + R_END] as number) - start;
      const idAt = spans[i + R_TRACE_ID_AT] as number;
      invariant(len > 0 && idAt >= start && idAt + 16 <= start + len, 'a received span holds its trace id');
      let t = this.find(buf, idAt);
      if ((t !== NONE && (this.tCount[t] as number) >= this.limits.maxSpansPerTrace) || len > this.limits.maxBytes) {
        this.dropped++;
        continue;
      }
      const evicted = this.evictions;
      // The oldest traces go until this span fits the bounds (its own trace among them, when it
      // is the oldest: it then starts again).
      while (this.liveSpans >= this.limits.maxSpans || this.liveBytes + len > this.limits.maxBytes) this.evictOldest();
      if (this.evictions !== evicted && t !== NONE) t = this.find(buf, idAt);
      const s = this.takeSpanRow(len);
      if (t === NONE) t = this.takeTraceRow(buf, idAt, nowMs);
      const r = spans[i + R_RESOURCE] as number;
      const given = received.resources[r] as SpanResource;
      let res = rows[r] as number;
      const row = res === NONE ? null : this.resources[res];
      if (!row || row.service !== given.service || row.instance !== given.instance) res = rows[r] = this.internResource(given);
      buf.copy(this.arena, this.rows.off[s] as number, start, start + len);
      const startMs = spans[i + R_START_MS] as number;
      const endMs = spans[i + R_END_MS] as number;
      const flags = (spans[i + R_FLAGS] as number) & (ERROR | ROOT);
      this.rows.len[s] = len;
      this.rows.startMs[s] = startMs;
      this.rows.endMs[s] = endMs;
      this.rows.flags[s] = flags | LIVE;
      this.rows.res[s] = res;
      this.rows.trace[s] = t;
      this.rows.next[s] = NONE;
      (this.resources[res] as ResourceRow).refs++;
      if (this.tCount[t] === 0) {
        this.tFirst[t] = s;
        this.tStartMs[t] = startMs;
        this.tEndMs[t] = endMs;
      } else {
        this.rows.next[this.tLast[t] as number] = s;
        if (startMs < (this.tStartMs[t] as number)) this.tStartMs[t] = startMs;
        if (endMs > (this.tEndMs[t] as number)) this.tEndMs[t] = endMs;
      }
      this.tLast[t] = s;
      this.tCount[t] = (this.tCount[t] as number) + 1;
      if (flags & ERROR) this.tFlags[t] = (this.tFlags[t] as number) | ERROR;
      const bit = (this.resources[res] as ResourceRow).bit;
      if (bit < 0) this.tFlags[t] = (this.tFlags[t] as number) | OTHER_SERVICE;
      else if (bit < 32) this.tServicesLo[t] = ((this.tServicesLo[t] as number) | (1 << bit)) >>> 0;
      else this.tServicesHi[t] = ((this.tServicesHi[t] as number) | (1 << (bit - 32))) >>> 0;
      this.liveSpans++;
      this.liveBytes += len;
    }
  }

  /** Traces received longer ago than the retention go, oldest first. */
  private expire(nowMs: number): void {
    while (this.tUsed > 0) {
      const t = this.tTail;
      if ((this.tFlags[t] as number) & LIVE) {
        if (nowMs - (this.tReceivedMs[t] as number) <= this.limits.retentionMs) return;
        this.evict(t);
      }
      this.releaseTraceTail();
    }
  }

  // --- span rows and the arena

  /** Reserves the next span row and `len` bytes of arena for it (its offset set). Evicts nothing. */
  private takeSpanRow(len: number): number {
    for (let compactions = 0; ; compactions++) {
      // Holes at the tail (spans of evicted traces) are given back at once.
      while (this.sUsed > 0 && !((this.rows.flags[this.sTail] as number) & LIVE)) this.releaseSpanTail();
      const at = this.sUsed < this.rowCap ? this.room(len) : -1;
      if (at >= 0) {
        const s = this.sHead;
        if (at < this.writeAt) this.wrapped = true;
        this.rows.off[s] = at;
        this.writeAt = at + len;
        this.sHead = (s + 1) % this.rowCap;
        this.sUsed++;
        return s;
      }
      // No row or no run of bytes free: the holes are inside the ring. Each compaction either
      // grows the arena or, at its cap, leaves rowCap − maxSpans rows and arenaCap − maxBytes
      // bytes free, which fit any span the bounds let in.
      invariant(compactions < 40, 'a compaction makes room for a span within the bounds');
      const needsBytes = this.sUsed < this.rowCap || this.liveBytes + len > this.arena.length;
      this.compact(needsBytes && this.arena.length < this.arenaCap ? Math.min(this.arenaCap, this.arena.length * 2) : this.arena.length);
    }
  }

  /** Where `len` contiguous bytes are free, or -1. */
  private room(len: number): number {
    const size = this.arena.length;
    if (this.sUsed === 0) {
      this.writeAt = 0;
      this.wrapped = false;
      return len <= size ? 0 : -1;
    }
    const tailAt = this.rows.off[this.sTail] as number;
    if (this.wrapped) return tailAt - this.writeAt >= len ? this.writeAt : -1;
    if (size - this.writeAt >= len) return this.writeAt;
    return tailAt >= len ? 0 : -1;
  }

  /** Gives back the oldest span row, a hole. */
  private releaseSpanTail(): void {
    const s = this.sTail;
    invariant(!((this.rows.flags[s] as number) & LIVE), 'only a hole is given back');
    const at = this.rows.off[s] as number;
    this.sTail = (s + 1) % this.rowCap;
    this.sUsed--;
    // The tail passed the point where writing wrapped: the bytes are in one run again.
    if (this.sUsed === 0 || (this.rows.off[this.sTail] as number) < at) this.wrapped = false;
  }

  /**
   * Copies the stored spans, in ring order, to the front of the spare columns and of a fresh
   * arena of `size` bytes (holes left out), and renumbers the rows their traces point to.
   */
  private compact(size: number): void {
    const from = this.rows;
    const to = this.spare;
    const arena = Buffer.allocUnsafeSlow(size);
    let k = 0;
    let at = 0;
    for (let i = 0, s = this.sTail; i < this.sUsed; i++, s = (s + 1) % this.rowCap) {
      if (!((from.flags[s] as number) & LIVE)) continue;
      const off = from.off[s] as number;
      const len = from.len[s] as number;
      this.arena.copy(arena, at, off, off + len);
      this.moved[s] = k;
      to.off[k] = at;
      to.len[k] = len;
      to.startMs[k] = from.startMs[s] as number;
      to.endMs[k] = from.endMs[s] as number;
      to.flags[k] = from.flags[s] as number;
      to.res[k] = from.res[s] as number;
      to.trace[k] = from.trace[s] as number;
      to.next[k] = from.next[s] as number;
      at += len;
      k++;
    }
    invariant(k === this.liveSpans && at === this.liveBytes, 'a compaction keeps every stored span');
    for (let j = 0; j < k; j++) if (to.next[j] !== NONE) to.next[j] = this.moved[to.next[j] as number] as number;
    for (let i = 0, t = this.tTail; i < this.tUsed; i++, t = (t + 1) % this.limits.maxTraces) {
      if (!((this.tFlags[t] as number) & LIVE) || this.tCount[t] === 0) continue;
      this.tFirst[t] = this.moved[this.tFirst[t] as number] as number;
      this.tLast[t] = this.moved[this.tLast[t] as number] as number;
    }
    this.spare = from;
    this.rows = to;
    this.arena = arena;
    this.sTail = 0;
    this.sHead = k % this.rowCap;
    this.sUsed = k;
    this.writeAt = at;
    this.wrapped = false;
  }

  // --- trace rows and the id table

  private takeTraceRow(buf: Uint8Array, idAt: number, nowMs: number): number {
    while (this.tUsed === this.limits.maxTraces) {
      if ((this.tFlags[this.tTail] as number) & LIVE) this.evict(this.tTail);
      this.releaseTraceTail();
    }
    const t = this.tHead;
    this.tHead = (t + 1) % this.limits.maxTraces;
    this.tUsed++;
    this.tId.set(buf.subarray(idAt, idAt + 16), t * 16);
    this.tFirst[t] = NONE;
    this.tLast[t] = NONE;
    this.tCount[t] = 0;
    this.tReceivedMs[t] = nowMs;
    this.tFlags[t] = LIVE;
    this.tServicesLo[t] = 0;
    this.tServicesHi[t] = 0;
    let i = hashId(this.tId, t * 16, this.seed) & this.tableMask;
    while (this.table[i] !== NONE) i = (i + 1) & this.tableMask;
    this.table[i] = t;
    this.liveTraces++;
    return t;
  }

  /** The oldest stored trace goes (the trace ring's tail: every eviction is of its oldest). */
  private evictOldest(): void {
    while (this.tUsed > 0 && !((this.tFlags[this.tTail] as number) & LIVE)) this.releaseTraceTail();
    invariant(this.tUsed > 0, 'a bound is passed only while a trace is stored');
    this.evict(this.tTail);
    this.releaseTraceTail();
  }

  private releaseTraceTail(): void {
    invariant(!((this.tFlags[this.tTail] as number) & LIVE), 'a trace row is evicted before it is given back');
    this.tTail = (this.tTail + 1) % this.limits.maxTraces;
    this.tUsed--;
  }

  private sameId(t: number, bytes: Uint8Array, at: number): boolean {
    const id = this.tId;
    const base = t * 16;
    for (let k = 0; k < 16; k++) if (id[base + k] !== bytes[at + k]) return false;
    return true;
  }

  /** The live trace with the 16-byte id at `bytes[at]`, or NONE. */
  private find(bytes: Uint8Array, at: number): number {
    let i = hashId(bytes, at, this.seed) & this.tableMask;
    for (;;) {
      const t = this.table[i] as number;
      if (t === NONE) return NONE;
      if (this.sameId(t, bytes, at)) return t;
      i = (i + 1) & this.tableMask;
    }
  }

  /** Removes trace row `t` from the id table (backward-shift deletion: no tombstones). */
  private unindex(t: number): void {
    const mask = this.tableMask;
    let i = hashId(this.tId, t * 16, this.seed) & mask;
    while (this.table[i] !== t) {
      invariant(this.table[i] !== NONE, 'a live trace is in the id table');
      i = (i + 1) & mask;
    }
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const u = this.table[j] as number;
      if (u === NONE) break;
      const home = hashId(this.tId, u * 16, this.seed) & mask;
      // u may move to the hole at i if its home is not in the cyclic range (i, j].
      if (i <= j ? home <= i || home > j : home <= i && home > j) {
        this.table[i] = u;
        i = j;
      }
    }
    this.table[i] = NONE;
  }

  /** A whole trace goes: its spans' rows become holes until the ring's tail passes them. */
  private evict(t: number): void {
    invariant(((this.tFlags[t] as number) & LIVE) !== 0, 'only a stored trace is evicted');
    for (let s = this.tFirst[t] as number; s !== NONE; s = this.rows.next[s] as number) {
      this.rows.flags[s] = (this.rows.flags[s] as number) & ~LIVE;
      this.liveSpans--;
      this.liveBytes -= this.rows.len[s] as number;
      this.releaseResource(this.rows.res[s] as number);
    }
    this.unindex(t);
    this.tFlags[t] = 0;
    this.liveTraces--;
    this.evictions++;
  }

  // --- resources

  private internResource(r: SpanResource): number {
    const key = `${r.service}\n${r.instance}`;
    const known = this.resourceByKey.get(key);
    if (known !== undefined) return known;
    let bit = this.serviceBits.get(r.service);
    if (bit === undefined && this.serviceNames.length < SERVICE_BITS) {
      bit = this.serviceNames.length;
      this.serviceBits.set(r.service, bit);
      this.serviceNames.push(r.service);
    }
    const row: ResourceRow = { service: r.service, instance: r.instance, bit: bit ?? -1, refs: 0, key };
    const i = this.freeResources.pop() ?? this.resources.length;
    this.resources[i] = row;
    this.resourceByKey.set(key, i);
    return i;
  }

  private releaseResource(i: number): void {
    const row = this.resources[i] as ResourceRow;
    if (--row.refs > 0) return;
    this.resources[i] = null;
    this.resourceByKey.delete(row.key);
    this.freeResources.push(i);
  }

  // --- queries

  private span(s: number): StoredSpan {
    const off = this.rows.off[s] as number;
    return decodeSpan(this.arena, off, off + (this.rows.len[s] as number), this.resources[this.rows.res[s] as number] as SpanResource);
  }

  private traceIdOf(t: number): string {
    return Buffer.from(this.tId.buffer, this.tId.byteOffset + t * 16, 16).toString('hex');
  }

  get(traceId: string): { traceId: string; spans: StoredSpan[] } | null {
    if (!TRACE_ID.test(traceId)) return null;
    const id = Buffer.from(traceId, 'hex');
    const t = this.find(id, 0);
    if (t === NONE) return null;
    const spans: StoredSpan[] = [];
    for (let s = this.tFirst[t] as number; s !== NONE; s = this.rows.next[s] as number) spans.push(this.span(s));
    return { traceId, spans: spans.sort(byStart) };
  }

  private servicesOf(t: number): string[] {
    const out = new Set<string>();
    if ((this.tFlags[t] as number) & OTHER_SERVICE) {
      for (let s = this.tFirst[t] as number; s !== NONE; s = this.rows.next[s] as number) out.add((this.resources[this.rows.res[s] as number] as ResourceRow).service);
    } else {
      const lo = this.tServicesLo[t] as number;
      const hi = this.tServicesHi[t] as number;
      for (let b = 0; b < this.serviceNames.length; b++) if (b < 32 ? lo & (1 << b) : hi & (1 << (b - 32))) out.add(this.serviceNames[b] as string);
    }
    return [...out].sort();
  }

  private hasService(t: number, service: string): boolean {
    const bit = this.serviceBits.get(service);
    if (bit !== undefined && (bit < 32 ? (this.tServicesLo[t] as number) & (1 << bit) : (this.tServicesHi[t] as number) & (1 << (bit - 32)))) return true;
    if (!((this.tFlags[t] as number) & OTHER_SERVICE)) return false;
    for (let s = this.tFirst[t] as number; s !== NONE; s = this.rows.next[s] as number) if ((this.resources[this.rows.res[s] as number] as ResourceRow).service === service) return true;
    return false;
  }

  /**
   * The root is the earliest span with no parent; a trace continued from outside (its first
   * span's parent is elsewhere) has none, and then it is the earliest span whose parent is not in
   * the trace. Only the spans needed are decoded.
   */
  private headOf(t: number): { rootService: string; rootName: string; startTimeUnixNano: string } {
    let first = NONE;
    let root = NONE;
    for (let s = this.tFirst[t] as number; s !== NONE; s = this.rows.next[s] as number) {
      if (first === NONE || (this.rows.startMs[s] as number) < (this.rows.startMs[first] as number)) first = s;
      if ((this.rows.flags[s] as number) & ROOT && (root === NONE || (this.rows.startMs[s] as number) < (this.rows.startMs[root] as number))) root = s;
    }
    let rootSpan = root === NONE ? undefined : this.span(root);
    if (!rootSpan) {
      const spans: StoredSpan[] = [];
      for (let s = this.tFirst[t] as number; s !== NONE; s = this.rows.next[s] as number) spans.push(this.span(s));
      const ids = new Set(spans.map((x) => x.spanId));
      rootSpan = spans.filter((x) => !x.parentSpanId || !ids.has(x.parentSpanId)).sort(byStart)[0] ?? spans[0];
    }
    return { rootService: rootSpan?.service ?? '', rootName: rootSpan?.name ?? '', startTimeUnixNano: first === NONE ? '0' : this.span(first).startTimeUnixNano };
  }

  /** Newest first. */
  search(q: { service?: string; status?: 'OK' | 'ERROR'; minDurationMs?: number; maxDurationMs?: number; limit: number; name?: string }): TraceSummary[] {
    const out: TraceSummary[] = [];
    const T = this.limits.maxTraces;
    for (let i = 0, t = (this.tHead - 1 + T) % T; i < this.tUsed && out.length < q.limit; i++, t = (t - 1 + T) % T) {
      const flags = this.tFlags[t] as number;
      if (!(flags & LIVE)) continue;
      if (q.status === 'ERROR' && !(flags & ERROR)) continue;
      if (q.status === 'OK' && flags & ERROR) continue;
      const durationMs = roundMs((this.tEndMs[t] as number) - (this.tStartMs[t] as number));
      if (q.minDurationMs !== undefined && durationMs < q.minDurationMs) continue;
      if (q.maxDurationMs !== undefined && durationMs > q.maxDurationMs) continue;
      if (q.service && !this.hasService(t, q.service)) continue;
      const head = this.headOf(t);
      if (q.name && !head.rootName.includes(q.name)) continue;
      out.push({
        traceId: this.traceIdOf(t),
        rootService: head.rootService,
        rootName: head.rootName,
        startTimeUnixNano: head.startTimeUnixNano,
        durationMs,
        spanCount: this.tCount[t] as number,
        services: this.servicesOf(t),
        status: flags & ERROR ? 'ERROR' : 'OK',
      });
    }
    return out;
  }
}

