/**
 * Tracing with the OpenTelemetry API and SDK. The active span travels through async code in
 * AsyncLocalStorage (OpenTelemetry's context manager), enabled only when tracing is on: on
 * Node 20 its promise hooks cost ~75 ns per await (measured), so with tracing off nothing pays.
 *
 * W3C `traceparent` and B3 (`x-b3-*` and single `b3`) are both accepted and emitted. Spans go
 * over OTLP/HTTP to the control plane's trace store by default, or to the collector named by
 * OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; OTEL_TRACES_SAMPLER (and
 * _ARG) choose the sampler, as the OpenTelemetry specification defines them.
 */
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  type Context,
  ROOT_CONTEXT,
  context as otelContext,
  type Span,
  type SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { CompositePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { B3InjectEncoding, B3Propagator } from '@opentelemetry/propagator-b3';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import type { Logger } from '../service-kit/logger.js';

export type TraceContext = Context;
export { ROOT_CONTEXT, SpanStatusCode, type Span };

const getter: TextMapGetter<Record<string, string | string[] | undefined>> = {
  keys: (c) => Object.keys(c),
  get: (c, k) => {
    const v = c[k];
    return Array.isArray(v) ? v[0] : v;
  },
};
const setter: TextMapSetter<Record<string, string>> = {
  set: (c, k, v) => {
    c[k] = v;
  },
};

/** Reads OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (OpenTelemetry's environment spec). */
export function samplerFromEnv(env: NodeJS.ProcessEnv): Sampler {
  const arg = Number(env.OTEL_TRACES_SAMPLER_ARG ?? '1');
  const ratio = Number.isFinite(arg) && arg >= 0 && arg <= 1 ? arg : 1;
  switch ((env.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on').trim()) {
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

export const SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;

export function tracesEndpoint(env: NodeJS.ProcessEnv, controlUrl: string): string {
  if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT) return `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`;
  return `${controlUrl}/v1/traces`;
}

export class Telemetry {
  readonly tracer: Tracer;
  private readonly provider: BasicTracerProvider;
  private readonly propagator = new CompositePropagator({
    propagators: [new W3CTraceContextPropagator(), new B3Propagator({ injectEncoding: B3InjectEncoding.MULTI_HEADER }), new B3Propagator()],
  });

  constructor(opts: { service: string; version: string; instanceId: string; controlUrl: string; env: NodeJS.ProcessEnv; log: Logger; enabled: boolean }) {
    const processors = opts.enabled
      ? [
          new BatchSpanProcessor(new OTLPTraceExporter({ url: tracesEndpoint(opts.env, opts.controlUrl), timeoutMillis: 5000 }), {
            maxQueueSize: 4096,
            maxExportBatchSize: 512,
            scheduledDelayMillis: 500,
            exportTimeoutMillis: 5000,
          }),
        ]
      : [];
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes({
        'service.name': opts.service,
        'service.version': opts.version,
        'service.instance.id': opts.instanceId,
        'service.namespace': 'default',
      }),
      sampler: opts.enabled ? samplerFromEnv(opts.env) : new AlwaysOffSampler(),
      spanProcessors: processors,
    });
    this.tracer = this.provider.getTracer('concord', '0.1.0');
    this.enabled = opts.enabled;
    if (opts.enabled) otelContext.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  }

  readonly enabled: boolean;

  /** The context of the code running now (the root when tracing is off). */
  active(): TraceContext {
    return this.enabled ? otelContext.active() : ROOT_CONTEXT;
  }

  /** Runs `fn` with `ctx` active. */
  with<T>(ctx: TraceContext, fn: () => T): T {
    return this.enabled ? otelContext.with(ctx, fn) : fn();
  }

  /** The context carried by incoming headers (W3C or B3), or the root. */
  extract(headers: Record<string, string | string[] | undefined>): TraceContext {
    return this.propagator.extract(ROOT_CONTEXT, headers, getter);
  }

  /** Adds traceparent and B3 headers for `ctx` to `headers`. */
  inject(ctx: TraceContext, headers: Record<string, string>): Record<string, string> {
    this.propagator.inject(ctx, headers, setter);
    return headers;
  }

  start(name: string, parent: TraceContext | null, kind: SpanKind, attributes: Record<string, string | number | boolean> = {}): { span: Span; ctx: TraceContext } {
    const p = parent ?? this.active();
    const span = this.tracer.startSpan(name, { kind, attributes }, p);
    return { span, ctx: trace.setSpan(p, span) };
  }

  /** Runs `fn` in a child span of the active context, with the span active; records errors. */
  async inSpan<T>(name: string, kind: SpanKind, fn: (span: Span) => Promise<T>, attributes: Record<string, string | number | boolean> = {}): Promise<T> {
    if (!this.enabled) return fn(trace.wrapSpanContext({ traceId: '0'.repeat(32), spanId: '0'.repeat(16), traceFlags: 0 }));
    const { span, ctx } = this.start(name, null, kind, attributes);
    try {
      return await otelContext.with(ctx, () => fn(span));
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
    const sc = trace.getSpanContext(ctx);
    if (!sc) return null;
    return `00-${sc.traceId}-${sc.spanId}-${sc.traceFlags & 1 ? '01' : '00'}`;
  }

  async shutdown(): Promise<void> {
    await this.provider.shutdown().catch(() => {});
  }
}

/** Trace and span ids of a context (for log lines), or null. */
export function idsOf(ctx: TraceContext): { traceId: string; spanId: string } | null {
  const sc = trace.getSpanContext(ctx);
  return sc ? { traceId: sc.traceId, spanId: sc.spanId } : null;
}

/** Serialises a context for storage (a saga keeps the trace of the request that started it). */
export function serializeContext(t: Telemetry, ctx: TraceContext): Record<string, string> {
  return t.inject(ctx, {});
}
