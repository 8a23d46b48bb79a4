/**
 * Tracing with the OpenTelemetry API and SDK, with the trace context passed explicitly.
 *
 * No AsyncLocalStorage: on Node 20 its promise hooks run on every promise in the process, and
 * with them on, the order flow lost 31 % of its throughput with no span recorded at all
 * (423 → 293 orders/s: bench:telemetry's load with one AsyncLocalStorage entered in every
 * process and tracing off, one round each, measured). So a context travels by hand: a
 * request's is `req.trace.ctx`, a call takes `trace`, a saga step gets `ctx.trace`, a
 * transaction takes it as an argument. `with(ctx, fn)` makes it active only for the
 * synchronous part of `fn` (until its first await); `active()` reads it there. That is
 * enough for code that starts its traced work at once (a batch route opening its
 * transaction) and is why every call after an await passes its context itself.
 *
 * Spans are started by RecordingTracer (recorder.ts), an API `Tracer` whose spans are the SDK's
 * `ReadableSpan`s, decided by the SDK's samplers and handed to SDK span processors; it replaces
 * the SDK's own Tracer and Span classes, which cost the order flow several times more per span.
 *
 * W3C `traceparent` and B3 (`x-b3-*` and single `b3`) are accepted; `traceparent` and the `x-b3-*`
 * headers are emitted (Envoy, Zipkin and Istio read the multi-header form). Spans go
 * over OTLP/HTTP (protobuf) to the control plane's trace store by default, or to the collector named by
 * OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; OTEL_TRACES_SAMPLER (and
 * _ARG) choose the sampler, as the OpenTelemetry specification defines them.
 */
import {
  type Context,
  INVALID_SPANID,
  INVALID_TRACEID,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  TraceFlags,
  type Tracer,
  createContextKey,
  trace,
} from '@opentelemetry/api';
import { type ExportResult, ExportResultCode, W3CTraceContextPropagator, isTracingSuppressed } from '@opentelemetry/core';
import { B3InjectEncoding, B3Propagator } from '@opentelemetry/propagator-b3';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  type ReadableSpan,
  type Sampler,
  SamplingDecision,
  type SamplingResult,
  type SpanExporter,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import type { mesh } from '@concord/core';
import { decimalVar, enumVar, loadConfig } from '../service-kit/config.js';
import type { Logger } from '../service-kit/logger.js';
import { OtlpProtoSpanProcessor } from './otlp-proto.js';
import { CheckedRemoteContext, LinkedContext, RecordedSpan, RecordingTracer } from './recorder.js';

export type TraceContext = Context;
const NO_SPAN = trace.wrapSpanContext({ traceId: '0'.repeat(32), spanId: '0'.repeat(16), traceFlags: 0 });
/** The empty context every traced request starts from (a LinkedContext: see recorder.ts). */
export const ROOT_CONTEXT: Context = LinkedContext.ROOT;
export { SpanKind, SpanStatusCode, type Span };

const getter: TextMapGetter<Record<string, string | string[] | undefined>> = {
  keys: (c) => Object.keys(c),
  get: (c, k) => {
    const v = c[k];
    return Array.isArray(v) ? v[0] : v;
  },
};
/** The context key B3's propagator keeps a debug decision under (createContextKey is Symbol.for: the same key). */
const B3_DEBUG_FLAG_KEY = createContextKey('OpenTelemetry Context Key B3 Debug Flag');

/** OTEL_TRACES_SAMPLER's values (OpenTelemetry's, less the jaeger and xray remote samplers). */
export const SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;

/**
 * OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, as OpenTelemetry's environment specification
 * defines them; the service kit validates both at start-up (a bad value stops it, naming the
 * variable). The argument is the ratio of the traceidratio samplers, a probability in [0, 1].
 */
export const SAMPLER_VARS = {
  sampler: enumVar('OTEL_TRACES_SAMPLER', 'parentbased_always_on', SAMPLERS),
  samplerArg: decimalVar('OTEL_TRACES_SAMPLER_ARG', 1, 0, 1),
};

export type SamplerName = (typeof SAMPLERS)[number];

/** Reads the sampler from `env` (a bad value throws the ConfigError start-up reports). */
export function samplerFromEnv(env: NodeJS.ProcessEnv): Sampler {
  const c = loadConfig(SAMPLER_VARS, env);
  return samplerOf(c.sampler, c.samplerArg);
}

/** The sampler a validated OTEL_TRACES_SAMPLER names, with its ratio (used by the traceidratio ones). */
export function samplerOf(name: SamplerName, ratio: number): Sampler {
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio);
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
    default:
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/** A parent-based sampler's answers under a local parent (see SwitchableSampler.shouldSample). */
const SAMPLED: SamplingResult = Object.freeze({ decision: SamplingDecision.RECORD_AND_SAMPLED });
const NOT_SAMPLED: SamplingResult = Object.freeze({ decision: SamplingDecision.NOT_RECORD });

/**
 * The sampler in force, switchable while the process runs: a Telemetry resource's
 * randomSamplingPercentage replaces the one OTEL_TRACES_SAMPLER chose, and removing the
 * resource brings that one back. Decisions already made (spans started) are not revisited.
 */
class SwitchableSampler implements Sampler {
  private current: Sampler;

  constructor(private readonly fallback: Sampler) {
    this.current = fallback;
  }

  /** `percentage` null: back to the environment's sampler. */
  use(percentage: number | null): void {
    // Istio's percentage decides where a trace starts; downstream follows the parent's decision
    // (the sampled flag in traceparent / x-b3-sampled), so the whole trace is kept or dropped.
    this.current = percentage === null ? this.fallback : new ParentBasedSampler({ root: percentageSampler(percentage) });
  }

  shouldSample(...args: Parameters<Sampler['shouldSample']>): ReturnType<Sampler['shouldSample']> {
    // A parent-based sampler follows a local parent's decision. A parent recorded here is valid
    // by construction, so its flag decides at once: ParentBasedSampler would check its ids again
    // with regular expressions (profiled, ~0.5 µs per span).
    // The same holds for a remote parent read from a traceparent checked on arrival: every
    // ParentBasedSampler made here keeps the defaults for remote parents (sampled: always on,
    // not sampled: always off), so its flag decides too.
    if (this.current instanceof ParentBasedSampler) {
      const parent = trace.getSpan(args[0]);
      if (parent !== undefined && (parent instanceof RecordedSpan || parent.spanContext() instanceof CheckedRemoteContext)) {
        return parent.spanContext().traceFlags & TraceFlags.SAMPLED ? SAMPLED : NOT_SAMPLED;
      }
    }
    return this.current.shouldSample(...args);
  }

  toString(): string {
    return this.current.toString();
  }
}

function percentageSampler(percentage: number): Sampler {
  if (percentage >= 100) return new AlwaysOnSampler();
  if (percentage <= 0) return new AlwaysOffSampler();
  return new TraceIdRatioBasedSampler(percentage / 100);
}

export function tracesEndpoint(env: NodeJS.ProcessEnv, controlUrl: string): string {
  if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT) return `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`;
  return `${controlUrl}/v1/traces`;
}

/** How often at most a failing export is logged. */
const EXPORT_ERROR_LOG_INTERVAL_MS = 60_000;
const EXPORT_TIMEOUT_MS = 5000;

/** How long a finished span waits at most before it is sent, unless OTEL_BSP_SCHEDULE_DELAY says otherwise. */
export const SCHEDULED_DELAY_MS = 500;

/**
 * The control plane's receiver gets spans encoded as they end (otlp-proto.ts); a collector named
 * by the environment gets the SDK's batch processor and exporter, which read the rest of
 * OTEL_EXPORTER_OTLP_* (headers, compression, retries) too.
 */
function processorFor(env: NodeJS.ProcessEnv, controlUrl: string, log: Logger, delayMs: number): SpanProcessor {
  const url = tracesEndpoint(env, controlUrl);
  if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT) {
    return new BatchSpanProcessor(new SdkOtlpExporter({ url, timeoutMillis: EXPORT_TIMEOUT_MS }), {
      maxQueueSize: 4096,
      maxExportBatchSize: 512,
      scheduledDelayMillis: delayMs,
      exportTimeoutMillis: EXPORT_TIMEOUT_MS,
    });
  }
  let loggedAtMs = Number.NEGATIVE_INFINITY;
  return new OtlpProtoSpanProcessor({
    url,
    timeoutMs: EXPORT_TIMEOUT_MS,
    scheduledDelayMs: delayMs,
    onError: (err) => {
      if (Date.now() - loggedAtMs < EXPORT_ERROR_LOG_INTERVAL_MS) return;
      loggedAtMs = Date.now();
      log.warn({ err: err.message }, 'span export failed; these spans are dropped');
    },
  });
}

/**
 * The SDK's OTLP/HTTP exporter, loaded on first use: only a collector named by the environment
 * needs it, and loaded in every process it held ~0.7 MiB each (measured).
 */
class SdkOtlpExporter implements SpanExporter {
  private exporter: Promise<SpanExporter> | null = null;

  constructor(private readonly opts: { url: string; timeoutMillis: number }) {}

  private load(): Promise<SpanExporter> {
    this.exporter ??= import('@opentelemetry/exporter-trace-otlp-http').then((m) => new m.OTLPTraceExporter(this.opts));
    return this.exporter;
  }

  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    this.load().then(
      (e) => e.export(spans, done),
      (err: Error) => done({ code: ExportResultCode.FAILED, error: err }),
    );
  }

  async shutdown(): Promise<void> {
    if (this.exporter) await (await this.exporter).shutdown();
  }

  async forceFlush(): Promise<void> {
    if (this.exporter) await (await this.exporter).forceFlush?.();
  }
}

export class Telemetry {
  readonly tracer: Tracer;
  private readonly processors: SpanProcessor[];
  private readonly w3c = new W3CTraceContextPropagator();
  /** Extracts single `b3` or `x-b3-*` (inject writes `x-b3-*` itself). */
  private readonly b3 = new B3Propagator({ injectEncoding: B3InjectEncoding.MULTI_HEADER });
  private readonly sampler: SwitchableSampler;
  /** The Telemetry resource deciding this workload's sampling, or null (OTEL_TRACES_SAMPLER decides). */
  private sampling: mesh.TracingSampling | null = null;

  constructor(opts: {
    service: string;
    version: string;
    instanceId: string;
    controlUrl: string;
    env: NodeJS.ProcessEnv;
    log: Logger;
    enabled: boolean;
    /** OTEL_TRACES_EXPORTER as validated at start-up (default otlp). */
    exporter?: mesh.TracesExporter;
    /** OTEL_BSP_SCHEDULE_DELAY as validated at start-up: how long a finished span waits at most before it is sent. */
    scheduleDelayMs?: number;
    /** OTEL_TRACES_SAMPLER and _ARG as validated at start-up (else read from `env`). */
    sampler?: { name: SamplerName; ratio: number };
  }) {
    const exporter = opts.exporter ?? 'otlp';
    const processors =
      opts.enabled && exporter === 'otlp' ? [processorFor(opts.env, opts.controlUrl, opts.log, opts.scheduleDelayMs ?? SCHEDULED_DELAY_MS)] : [];
    let configured: Sampler = new AlwaysOffSampler();
    if (opts.enabled) configured = opts.sampler ? samplerOf(opts.sampler.name, opts.sampler.ratio) : samplerFromEnv(opts.env);
    this.sampler = new SwitchableSampler(configured);
    this.processors = processors;
    this.tracer = new RecordingTracer({
      resource: resourceFromAttributes({
        'service.name': opts.service,
        'service.version': opts.version,
        'service.instance.id': opts.instanceId,
        'service.namespace': 'default',
      }),
      scope: { name: 'concord', version: '0.1.0' },
      sampler: this.sampler,
      processors,
    });
    this.enabled = opts.enabled;
    this.exporter = exporter;
  }

  readonly enabled: boolean;
  /** Where recorded spans go: OTEL_TRACES_EXPORTER. */
  readonly exporter: mesh.TracesExporter;

  /**
   * Applies the mesh's Telemetry decision for this workload: a percentage of new traces, or null
   * to go back to OTEL_TRACES_SAMPLER. With tracing off (CONCORD_TRACING=false) nothing is
   * recorded whatever the mesh says: there is no exporter.
   */
  useSampling(sampling: mesh.TracingSampling | null): void {
    if (!this.enabled) return;
    // A new sampler only when the percentage changes (a renamed resource keeps the one in force).
    if ((sampling?.percentage ?? null) !== (this.sampling?.percentage ?? null)) this.sampler.use(sampling?.percentage ?? null);
    this.sampling = sampling;
  }

  /** This process's tracing, as the data plane reports it to the control plane. */
  tracingReport(): mesh.TracingReport {
    return { enabled: this.enabled, sampling: this.sampling, exporter: this.exporter };
  }

  /** The context made active by the innermost `with` running now (synchronously). */
  private current: TraceContext = ROOT_CONTEXT;

  /** The context of the synchronous code running now, inside `with` (else the root). */
  active(): TraceContext {
    return this.current;
  }

  /** Runs `fn` with `ctx` active until `fn` returns, which for an async `fn` is its first await. */
  with<T>(ctx: TraceContext, fn: () => T): T {
    if (!this.enabled) return fn();
    const outer = this.current;
    this.current = ctx;
    try {
      return fn();
    } finally {
      this.current = outer;
    }
  }

  /** The context to continue: `explicit` when given, else the active one. */
  parentOf(explicit: TraceContext | null | undefined): TraceContext {
    return explicit ?? this.current;
  }

  /** The context carried by incoming headers (W3C or B3), or the root. */
  extract(headers: Record<string, string | string[] | undefined>): TraceContext {
    // A valid `traceparent` wins when both kinds arrive; B3 is parsed only without one (each
    // parse is skipped when its headers are absent: this runs on every request).
    const tp = headers.traceparent;
    // The common case, a version-00 traceparent alone, is checked by hand (the propagator's
    // regular expression, and the tracer's and sampler's checks of the ids after it, cost ~2 µs
    // per request, profiled); anything else (another version, whitespace, a tracestate) goes
    // through the propagator.
    if (typeof tp === 'string' && headers.tracestate === undefined) {
      const sc = traceparent00(tp);
      if (sc) return trace.setSpanContext(ROOT_CONTEXT, sc);
    }
    const w3c = tp === undefined ? ROOT_CONTEXT : this.w3c.extract(ROOT_CONTEXT, headers, getter);
    if (w3c !== ROOT_CONTEXT && trace.getSpanContext(w3c)) return w3c;
    if (headers.b3 === undefined && headers['x-b3-traceid'] === undefined) return ROOT_CONTEXT;
    return this.b3.extract(ROOT_CONTEXT, headers, getter);
  }

  /** Adds `traceparent` (and `tracestate`) and the `x-b3-*` headers for `ctx` to `headers`. */
  inject(ctx: TraceContext, headers: Record<string, string>): Record<string, string> {
    // Written here rather than by the two propagators: each of them validated the ids again
    // with regular expressions on every outbound call (profiled). The ids in a context come
    // from the SDK or from extract(), which checked them on the way in.
    const sc = trace.getSpanContext(ctx);
    if (!sc || sc.traceId === INVALID_TRACEID || sc.spanId === INVALID_SPANID || isTracingSuppressed(ctx)) return headers;
    const flags = sc.traceFlags & 0xff;
    headers.traceparent = w3cTraceparent(sc.traceId, sc.spanId, flags);
    const state = sc.traceState?.serialize();
    if (state) headers.tracestate = state;
    headers['x-b3-traceid'] = sc.traceId;
    headers['x-b3-spanid'] = sc.spanId;
    // B3: a debug decision travels instead of the sampled flag.
    if (ctx.getValue(B3_DEBUG_FLAG_KEY) === '1') headers['x-b3-flags'] = '1';
    else headers['x-b3-sampled'] = flags & TraceFlags.SAMPLED ? '1' : '0';
    return headers;
  }

  start(
    name: string,
    parent: TraceContext | null | undefined,
    kind: SpanKind,
    attributes: Record<string, string | number | boolean> = {},
  ): { span: Span; ctx: TraceContext } {
    const p = this.parentOf(parent);
    const span = this.tracer.startSpan(name, { kind, attributes }, p);
    return { span, ctx: trace.setSpan(p, span) };
  }

  /**
   * Runs `fn` in a child span of `parent` (else of the active context), giving it the span and
   * the span's context (active until `fn`'s first await); records errors.
   */
  async inSpan<T>(
    name: string,
    kind: SpanKind,
    fn: (span: Span, ctx: TraceContext) => Promise<T>,
    attributes: Record<string, string | number | boolean> = {},
    parent?: TraceContext | null,
  ): Promise<T> {
    if (!this.enabled) return fn(NO_SPAN, ROOT_CONTEXT);
    const { span, ctx } = this.start(name, parent, kind, attributes);
    try {
      return await this.with(ctx, () => fn(span, ctx));
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message?.slice(0, 200) });
      throw err;
    } finally {
      span.end();
    }
  }

  /** The W3C traceparent of a context, for response headers and logs. */
  traceparent(ctx: TraceContext): string | null {
    return traceparentOf(ctx);
  }

  async shutdown(): Promise<void> {
    await Promise.all(this.processors.map((p) => p.shutdown().catch(() => {})));
  }
}

/** The W3C traceparent of a context, or null when it holds no span. */
export function traceparentOf(ctx: TraceContext): string | null {
  const sc = trace.getSpanContext(ctx);
  if (!sc) return null;
  return w3cTraceparent(sc.traceId, sc.spanId, sc.traceFlags & TraceFlags.SAMPLED);
}

/** 1 for each character a traceparent's hex fields may hold (lower-case hex digits), else 0. */
const LOWER_HEX = new Uint8Array(128);
for (const c of '0123456789abcdef') LOWER_HEX[c.charCodeAt(0)] = 1;

/** True when `s[from, to)` is lower-case hex digits, not all of them zeros. */
function nonZeroHex(s: string, from: number, to: number): boolean {
  let nonZero = false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || LOWER_HEX[c] === 0) return false;
    if (c !== 48) nonZero = true;
  }
  return nonZero;
}

/**
 * The span context of a version-00 traceparent (`00-<32 hex>-<16 hex>-<2 hex>`, exactly 55
 * characters), as W3C Trace Context and OpenTelemetry's propagator accept it: lower-case hex,
 * ids not all zeros. Null for anything else, which the propagator then reads (or refuses).
 */
export function traceparent00(v: string): CheckedRemoteContext | null {
  if (v.length !== 55 || v.charCodeAt(0) !== 48 || v.charCodeAt(1) !== 48 || v.charCodeAt(2) !== 45 || v.charCodeAt(35) !== 45 || v.charCodeAt(52) !== 45) return null;
  if (!nonZeroHex(v, 3, 35) || !nonZeroHex(v, 36, 52)) return null;
  const hi = v.charCodeAt(53);
  const lo = v.charCodeAt(54);
  if (hi >= 128 || lo >= 128 || LOWER_HEX[hi] === 0 || LOWER_HEX[lo] === 0) return null;
  return new CheckedRemoteContext(v.slice(3, 35), v.slice(36, 52), Number.parseInt(v.slice(53, 55), 16));
}

/** A version-00 traceparent; `flags` (0–255) as two hex digits. */
function w3cTraceparent(traceId: string, spanId: string, flags: number): string {
  return `00-${traceId}-${spanId}-${flags < 16 ? '0' : ''}${flags.toString(16)}`;
}

/** Trace and span ids of a context (for log lines), or null. */
export function idsOf(ctx: TraceContext): { traceId: string; spanId: string } | null {
  const sc = trace.getSpanContext(ctx);
  return sc ? { traceId: sc.traceId, spanId: sc.spanId } : null;
}
