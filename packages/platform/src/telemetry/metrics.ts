/**
 * Prometheus metrics for every process, with Istio's standard names and labels so the guide's
 * PromQL (and Kiali-style dashboards) work unchanged: `istio_requests_total` and the histogram
 * `istio_request_duration_milliseconds`, reported by both sides of a call (`reporter` =
 * source | destination). Plus Concord's own: saga outcomes, breaker states, outlier ejections,
 * rate-limit rejections, pool overflows — and Node's runtime metrics.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { RequestMetrics } from './request-metrics.js';
import { collectRuntimeMetrics } from './runtime-metrics.js';

/** Istio's default buckets for request durations (milliseconds). */
export const ISTIO_DURATION_BUCKETS_MS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];

/** Istio's standard labels of istio_requests_total and istio_request_duration_milliseconds. */
export const REQUEST_LABELS = [
  'reporter',
  'source_workload',
  'source_version',
  'source_principal',
  'destination_workload',
  'destination_service',
  'destination_service_name',
  'destination_version',
  'destination_principal',
  'request_protocol',
  'response_code',
  'response_flags',
  'connection_security_policy',
] as const;

export type RequestLabels = Record<(typeof REQUEST_LABELS)[number], string>;

export function serviceFqdn(service: string): string {
  return `${service}.default.svc.cluster.local`;
}

/** How often, by default, the event-loop delay is sampled (prom-client's default is 10 ms; see runtime-metrics.ts). */
export const EVENT_LOOP_RESOLUTION_MS = 100;

const BREAKER_STATE_VALUE = { CLOSED: 0, HALF_OPEN: 1, OPEN: 2 } as const;

export class Metrics {
  private breakerSource: () => Array<{ destination: string; state: keyof typeof BREAKER_STATE_VALUE }> = () => [];
  readonly registry = new Registry();
  /** istio_requests_total and istio_request_duration_milliseconds (request-metrics.ts). */
  readonly requests: RequestMetrics;
  readonly sagas: Counter<'type' | 'status'>;
  readonly breakerState: Gauge<'destination_service'>;
  readonly ejections: Counter<'destination_service' | 'endpoint'>;
  readonly ejected: Gauge<'destination_service'>;
  readonly rateLimited: Counter<'group'>;
  readonly poolOverflows: Counter<'destination_service'>;
  readonly retries: Counter<'destination_service' | 'reason'>;

  /** Where the breaker gauge reads its states at each scrape (a process with breakers sets it once). */
  observeBreakers(source: () => Array<{ destination: string; state: keyof typeof BREAKER_STATE_VALUE }>): void {
    this.breakerSource = source;
  }

  /**
   * `eventLoopResolutionMs`: how often the event-loop delay (nodejs_eventloop_lag_*) is sampled;
   * default EVENT_LOOP_RESOLUTION_MS.
   */
  constructor(labels: { service: string; version: string; instance: string; eventLoopResolutionMs?: number }) {
    this.registry.setDefaultLabels({ app: labels.service, version: labels.version, instance_id: labels.instance });
    collectRuntimeMetrics(this.registry, labels.eventLoopResolutionMs ?? EVENT_LOOP_RESOLUTION_MS);
    const r = [this.registry];
    this.requests = new RequestMetrics(
      this.registry,
      {
        counter: 'istio_requests_total',
        counterHelp: 'Requests, as Istio counts them (one per reporter side).',
        histogram: 'istio_request_duration_milliseconds',
        histogramHelp: 'Request duration in milliseconds, as Istio reports it.',
      },
      REQUEST_LABELS,
      ISTIO_DURATION_BUCKETS_MS,
    );
    this.sagas = new Counter({ name: 'concord_saga_outcomes_total', help: 'Sagas settled, by type and final status.', labelNames: ['type', 'status'], registers: r });
    const metrics = this;
    this.breakerState = new Gauge({
      name: 'concord_circuit_breaker_state',
      help: 'Circuit breaker state: 0 closed, 1 half-open, 2 open.',
      labelNames: ['destination_service'],
      registers: r,
      collect() {
        for (const b of metrics.breakerSource()) this.set({ destination_service: b.destination }, BREAKER_STATE_VALUE[b.state]);
      },
    });
    this.ejections = new Counter({ name: 'concord_outlier_ejections_total', help: 'Endpoints ejected by outlier detection.', labelNames: ['destination_service', 'endpoint'], registers: r });
    this.ejected = new Gauge({ name: 'concord_outlier_ejected_endpoints', help: 'Endpoints ejected right now.', labelNames: ['destination_service'], registers: r });
    this.rateLimited = new Counter({ name: 'concord_rate_limited_total', help: 'Requests refused with 429 by the rate limiter.', labelNames: ['group'], registers: r });
    this.poolOverflows = new Counter({ name: 'concord_pool_overflow_total', help: 'Requests refused at once because the connection pool and its queue were full.', labelNames: ['destination_service'], registers: r });
    this.retries = new Counter({ name: 'concord_mesh_retries_total', help: 'Retries made by the mesh client.', labelNames: ['destination_service', 'reason'], registers: r });
  }

  observeRequest(l: RequestLabels, durationMs: number): void {
    this.requests.observe(l, durationMs);
  }
}
