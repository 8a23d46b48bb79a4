/**
 * A lean OpenTelemetry `Tracer`: spans that implement the API's `Span` and the SDK's
 * `ReadableSpan`, sampled by an SDK `Sampler` and handed to SDK `SpanProcessor`s (our OTLP
 * encoder, or the SDK's batch processor and exporter for a collector named by the environment).
 *
 * Why not the SDK's own Tracer and SpanImpl: on the order path a traced order makes 15 spans in
 * the order process alone, and the SDK's start and end of each one copies and checks its
 * attributes twice, reads the clocks five times (building an [s, ns] pair each time), checks the
 * parent's ids with regular expressions and feeds the SDK's own span metrics. That was most of
 * the 12–15 % that tracing at 100 % cost the order flow. Here a span reads one clock at each
 * end, keeps its attributes in one object, and converts its times only when an exporter asks.
 * What the specification asks of a span is kept: attribute, event and link limits (the SDK's
 * defaults), no change after end, `recordException` as an `exception` event, ends after the
 * first ignored, and the sampler's decision (non-recording spans still carry the context).
 */
import {
  type Attributes,
  type AttributeValue,
  type Context,
  type Exception,
  type HrTime,
  INVALID_SPAN_CONTEXT,
  type Link,
  type Span,
  type SpanContext,
  SpanKind,
  type SpanOptions,
  type SpanStatus,
  SpanStatusCode,
  SamplingDecision,
  type TimeInput,
  TraceFlags,
  type Tracer,
  context as apiContext,
  trace,
} from '@opentelemetry/api';
import { type InstrumentationScope, isAttributeValue, isTracingSuppressed } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan, Sampler, SpanProcessor, TimedEvent } from '@opentelemetry/sdk-trace-base';
import { performance } from 'node:perf_hooks';
import { randomFillSync } from 'node:crypto';

/** The SDK's default span limits (OTEL_SPAN_*_COUNT_LIMIT unset). */
export const MAX_ATTRIBUTES_PER_SPAN = 128;
export const MAX_EVENTS_PER_SPAN = 128;
export const MAX_LINKS_PER_SPAN = 128;
/** How often the wall clock is read again to follow adjustments of it (NTP). */
const CLOCK_ANCHOR_MS = 1_000;
/** Random bytes drawn at once for ids (a 16-byte trace id or an 8-byte span id at a time). */
const ID_POOL_BYTES = 4_096;

/**
 * Milliseconds since the epoch, with the monotonic clock's sub-millisecond precision. The offset
 * between the two clocks is read again every CLOCK_ANCHOR_MS, so a span's times follow the wall
 * clock as the SDK's do, at one clock read per call instead of several.
 */
export class SpanClock {
  private originMs = 0;
  private anchoredAtMs = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly monotonicMs: () => number = () => performance.now(),
    private readonly wallMs: () => number = Date.now,
  ) {}

  nowMs(): number {
    const mono = this.monotonicMs();
    if (mono - this.anchoredAtMs >= CLOCK_ANCHOR_MS) {
      this.originMs = this.wallMs() - mono;
      this.anchoredAtMs = mono;
    }
    return this.originMs + mono;
  }

  /**
   * A `TimeInput` as epoch milliseconds. A number is read as the SDK reads it: one not past the
   * monotonic clock's reading is a `performance.now()` time, any other is epoch milliseconds.
   */
  toEpochMs(t: TimeInput): number {
    if (typeof t === 'number') {
      const mono = this.monotonicMs();
      if (t > mono) return t;
      this.nowMs();
      return this.originMs + t;
    }
    if (t instanceof Date) return t.getTime();
    return t[0] * 1000 + t[1] / 1e6;
  }
}

/** Epoch milliseconds (a double) as OpenTelemetry's [seconds, nanoseconds]. */
export function msToHrTime(ms: number): HrTime {
  const s = Math.floor(ms / 1000);
  let ns = Math.round((ms - s * 1000) * 1e6);
  if (ns >= 1e9) ns = 999_999_999;
  return [s, ns];
}

/** Hex ids from a pool of random bytes refilled by the kernel's CSPRNG. */
export class IdSource {
  private readonly pool = Buffer.allocUnsafe(ID_POOL_BYTES);
  private at = ID_POOL_BYTES;

  private take(bytes: number): string {
    for (;;) {
      if (this.at + bytes > ID_POOL_BYTES) {
        randomFillSync(this.pool);
        this.at = 0;
      }
      const from = this.at;
      this.at += bytes;
      // All zeros is the invalid id: draw again (2⁻⁶⁴ at worst).
      for (let i = from; i < from + bytes; i++) if (this.pool[i] !== 0) return this.pool.toString('hex', from, from + bytes);
    }
  }

  traceId(): string {
    return this.take(16);
  }

  spanId(): string {
    return this.take(8);
  }
}

/**
 * A remote parent's span context whose ids and flags were checked where they were read (a
 * version-00 `traceparent`, see tracing.ts): valid by construction, like a RecordedSpan's, so
 * neither the tracer nor the sampler checks its ids again with regular expressions.
 */
export class CheckedRemoteContext implements SpanContext {
  readonly isRemote = true;
  /** A tracestate makes the propagator read the header instead (see tracing.ts): none here. */
  declare readonly traceState?: undefined;

  constructor(
    readonly traceId: string,
    readonly spanId: string,
    readonly traceFlags: number,
  ) {}
}

/** Links a context chain may have before setting a key flattens it (one link per key). */
export const MAX_CONTEXT_DEPTH = 32;

/**
 * An OpenTelemetry `Context` as a chain of one-key links. Setting a key allocates one small
 * object, where the API's own context copies its whole Map and makes three closures, once per
 * span started (profiled: a tenth of the recording's time). A lookup walks the chain, which is
 * as long as the spans are nested; a chain grown past MAX_CONTEXT_DEPTH (a loop deriving context
 * from context) is flattened, so it neither slows lookups nor holds its ancestors alive.
 */
export class LinkedContext implements Context {
  static readonly ROOT = new LinkedContext(null, null, undefined, 0);

  private constructor(
    private readonly parent: LinkedContext | null,
    private readonly key: symbol | null,
    private readonly value: unknown,
    private readonly depth: number,
  ) {}

  getValue(key: symbol): unknown {
    for (let c: LinkedContext | null = this; c !== null; c = c.parent) if (c.key === key) return c.value;
    return undefined;
  }

  setValue(key: symbol, value: unknown): Context {
    if (this.depth < MAX_CONTEXT_DEPTH) return new LinkedContext(this, key, value, this.depth + 1);
    // Flatten: the newest value of every key, oldest first, then this one.
    const newest = new Map<symbol, unknown>();
    for (let c: LinkedContext | null = this; c !== null; c = c.parent) if (c.key !== null && !newest.has(c.key)) newest.set(c.key, c.value);
    newest.delete(key);
    let flat = LinkedContext.ROOT;
    for (const [k, v] of [...newest].reverse()) if (v !== undefined) flat = new LinkedContext(flat, k, v, flat.depth + 1);
    return new LinkedContext(flat, key, value, flat.depth + 1);
  }

  deleteValue(key: symbol): Context {
    return this.getValue(key) === undefined ? this : this.setValue(key, undefined);
  }
}

/**
 * The attributes of an event or a link as the SDK keeps them: valid values only, arrays copied,
 * at most MAX_ATTRIBUTES_PER_SPAN (`dropped` counts the rest).
 */
function keptAttributes(given: Attributes | undefined): { kept: Attributes; count: number; dropped: number } {
  const kept: Attributes = {};
  let count = 0;
  let dropped = 0;
  for (const key in given) {
    const v = given[key];
    if (v === null || v === undefined || !isAttributeValue(v)) continue;
    if (count >= MAX_ATTRIBUTES_PER_SPAN) dropped++;
    else {
      kept[key] = Array.isArray(v) ? v.slice() : v;
      count++;
    }
  }
  return { kept, count, dropped };
}

/** Appends to a list of at most `max` items, the oldest giving way; 1 when one did. */
function pushBounded<T>(list: T[], item: T, max: number): number {
  const full = list.length >= max;
  if (full) list.shift();
  list.push(item);
  return full ? 1 : 0;
}

/** What every span of one tracer shares. */
interface Shared {
  readonly resource: Resource;
  readonly scope: InstrumentationScope;
  readonly processors: readonly SpanProcessor[];
  readonly clock: SpanClock;
}

const NO_EVENTS: TimedEvent[] = [];
const UNSET: SpanStatus = Object.freeze({ code: SpanStatusCode.UNSET });
const NO_LINKS: Link[] = [];

/** A span recorded for export; spanContext, attributes and status as the API defines them. */
export class RecordedSpan implements Span, ReadableSpan {
  attributes: Attributes;
  events: TimedEvent[] = NO_EVENTS;
  links: Link[] = NO_LINKS;
  status: SpanStatus = UNSET;
  droppedAttributesCount = 0;
  droppedEventsCount = 0;
  droppedLinksCount = 0;
  private attributeCount = 0;
  /** Epoch milliseconds; -1 until the span ends. */
  private endMs = -1;
  /** Set after the processors' onEnding: until then the span takes writes, as the SDK's does. */
  private done = false;
  /** An end given as [s, ns], kept as given (a double of epoch milliseconds holds ~0.2 µs). */
  private endHr: HrTime | null = null;

  constructor(
    private readonly shared: Shared,
    private readonly ctx: SpanContext,
    public name: string,
    readonly kind: SpanKind,
    readonly parentSpanContext: SpanContext | undefined,
    /** Epoch milliseconds (a double: ~0.2 µs apart at today's dates). */
    private readonly startMs: number,
    /** A start given as [s, ns], kept as given; else null. */
    private readonly startHr: HrTime | null,
    attributes: Attributes | undefined,
    links: Link[] | undefined,
  ) {
    this.attributes = {};
    if (attributes) this.setAttributes(attributes);
    if (links) this.addLinks(links);
  }

  spanContext(): SpanContext {
    return this.ctx;
  }

  get resource(): Resource {
    return this.shared.resource;
  }

  get instrumentationScope(): InstrumentationScope {
    return this.shared.scope;
  }

  get startTime(): HrTime {
    return this.startHr ?? msToHrTime(this.startMs);
  }

  get endTime(): HrTime {
    return this.endMs < 0 ? [0, 0] : (this.endHr ?? msToHrTime(this.endMs));
  }

  get duration(): HrTime {
    return this.endMs < 0 ? [-1, -1] : msToHrTime(this.endMs - this.startMs);
  }

  get ended(): boolean {
    return this.done;
  }

  isRecording(): boolean {
    return !this.done;
  }

  setAttribute(key: string, value: AttributeValue): this {
    if (this.done || value === null || value === undefined || key === '' || !isAttributeValue(value)) return this;
    if (!Object.hasOwn(this.attributes, key)) {
      if (this.attributeCount >= MAX_ATTRIBUTES_PER_SPAN) {
        this.droppedAttributesCount++;
        return this;
      }
      this.attributeCount++;
    }
    this.attributes[key] = Array.isArray(value) ? value.slice() : value;
    return this;
  }

  setAttributes(attributes: Attributes): this {
    for (const key in attributes) {
      if (Object.hasOwn(attributes, key)) this.setAttribute(key, attributes[key] as AttributeValue);
    }
    return this;
  }

  addEvent(name: string, attributesOrTime?: Attributes | TimeInput, time?: TimeInput): this {
    if (this.done) return this;
    let attributes: Attributes | undefined;
    if (attributesOrTime !== undefined && (typeof attributesOrTime === 'number' || attributesOrTime instanceof Date || Array.isArray(attributesOrTime))) {
      time ??= attributesOrTime as TimeInput;
    } else {
      attributes = attributesOrTime as Attributes | undefined;
    }
    if (this.events === NO_EVENTS) this.events = [];
    const { kept, dropped } = keptAttributes(attributes);
    this.droppedEventsCount += pushBounded(
      this.events,
      {
        name,
        attributes: kept,
        time: msToHrTime(time === undefined ? this.shared.clock.nowMs() : this.shared.clock.toEpochMs(time)),
        droppedAttributesCount: dropped,
      },
      MAX_EVENTS_PER_SPAN,
    );
    return this;
  }

  addLink(link: Link): this {
    if (this.done) return this;
    if (this.links === NO_LINKS) this.links = [];
    const { kept, count } = keptAttributes(link.attributes);
    this.droppedLinksCount += pushBounded(this.links, count > 0 ? { context: link.context, attributes: kept } : { context: link.context }, MAX_LINKS_PER_SPAN);
    return this;
  }

  addLinks(links: Link[]): this {
    for (const l of links) this.addLink(l);
    return this;
  }

  setStatus(status: SpanStatus): this {
    // The specification: OK is final, and UNSET never replaces a status that was set.
    if (this.done || status.code === SpanStatusCode.UNSET || this.status.code === SpanStatusCode.OK) return this;
    this.status =
      status.code === SpanStatusCode.ERROR && typeof status.message === 'string' ? { code: status.code, message: status.message } : { code: status.code };
    return this;
  }

  updateName(name: string): this {
    if (!this.done) this.name = name;
    return this;
  }

  recordException(exception: Exception, time?: TimeInput): void {
    const attributes: Attributes = {};
    if (typeof exception === 'string') attributes['exception.message'] = exception;
    else if (exception) {
      // As the SDK: a code when there is one, else the error's name.
      if (exception.code) attributes['exception.type'] = String(exception.code);
      else if (exception.name) attributes['exception.type'] = exception.name;
      if (exception.message) attributes['exception.message'] = exception.message;
      if (exception.stack) attributes['exception.stacktrace'] = exception.stack;
    }
    if (attributes['exception.type'] !== undefined || attributes['exception.message'] !== undefined) this.addEvent('exception', attributes, time);
  }

  end(endTime?: TimeInput): void {
    if (this.endMs >= 0) return;
    const ms = endTime === undefined ? this.shared.clock.nowMs() : this.shared.clock.toEpochMs(endTime);
    // A clock that stepped back between start and end makes an empty span, not a negative one.
    let endMs = ms;
    if (ms < this.startMs) {
      endMs = this.startMs;
      this.endHr = this.startHr;
    } else if (Array.isArray(endTime)) this.endHr = [endTime[0], endTime[1]];
    this.endMs = endMs;
    const processors = this.shared.processors;
    // onEnding (the SDK's newer hook) sees the end time set and the span still writable; onEnd
    // sees it ended.
    for (let i = 0; i < processors.length; i++) (processors[i] as SpanProcessor).onEnding?.(this);
    this.done = true;
    for (let i = 0; i < processors.length; i++) (processors[i] as SpanProcessor).onEnd(this);
  }
}

/**
 * Starts spans: the parent comes from the context given, the decision from the sampler, and a
 * sampled span is recorded and handed to every processor when it ends.
 */
export class RecordingTracer implements Tracer {
  private readonly shared: Shared;
  private readonly ids = new IdSource();

  constructor(opts: { resource: Resource; scope: InstrumentationScope; processors: SpanProcessor[]; sampler: Sampler; clock?: SpanClock }) {
    this.shared = { resource: opts.resource, scope: opts.scope, processors: opts.processors, clock: opts.clock ?? new SpanClock() };
    this.sampler = opts.sampler;
  }

  private readonly sampler: Sampler;

  startSpan(name: string, options: SpanOptions = {}, context: Context = apiContext.active()): Span {
    const ctx = options.root ? trace.deleteSpan(context) : context;
    if (isTracingSuppressed(ctx)) return trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
    const parent = trace.getSpan(ctx);
    // A parent recorded here, or read from a traceparent checked on arrival, is valid by
    // construction; any other (wrapped by a caller, or extracted by a propagator) is checked as
    // the SDK does.
    const parentContext = parent === undefined ? undefined : parent.spanContext();
    const validParent =
      parentContext !== undefined &&
      (parent instanceof RecordedSpan || parentContext instanceof CheckedRemoteContext || trace.isSpanContextValid(parentContext))
        ? parentContext
        : undefined;
    const traceId = validParent ? validParent.traceId : this.ids.traceId();
    const spanId = this.ids.spanId();
    const kind = options.kind ?? SpanKind.INTERNAL;
    const links = options.links ?? [];
    const attributes = options.attributes ?? {};
    const decision = this.sampler.shouldSample(ctx, traceId, name, kind, attributes, links);
    const spanContext: SpanContext = {
      traceId,
      spanId,
      traceFlags: decision.decision === SamplingDecision.RECORD_AND_SAMPLED ? TraceFlags.SAMPLED : TraceFlags.NONE,
      traceState: decision.traceState ?? validParent?.traceState,
    };
    if (decision.decision === SamplingDecision.NOT_RECORD) return trace.wrapSpanContext(spanContext);
    const startMs = options.startTime === undefined ? this.shared.clock.nowMs() : this.shared.clock.toEpochMs(options.startTime);
    const exactStart = Array.isArray(options.startTime) ? ([options.startTime[0], options.startTime[1]] as HrTime) : null;
    const span = new RecordedSpan(this.shared, spanContext, name, kind, validParent, startMs, exactStart, attributes, options.links);
    if (decision.attributes) span.setAttributes(decision.attributes);
    const processors = this.shared.processors;
    for (let i = 0; i < processors.length; i++) (processors[i] as SpanProcessor).onStart(span, ctx);
    return span;
  }

  startActiveSpan<F extends (span: Span) => unknown>(name: string, ...args: unknown[]): ReturnType<F> {
    const fn = args[args.length - 1] as F;
    const options = (args.length >= 2 ? args[0] : {}) as SpanOptions;
    const parent = (args.length >= 3 ? args[1] : apiContext.active()) as Context;
    const span = this.startSpan(name, options, parent);
    return apiContext.with(trace.setSpan(parent, span), () => fn(span) as ReturnType<F>);
  }
}
