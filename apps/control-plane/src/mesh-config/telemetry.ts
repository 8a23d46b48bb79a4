/**
 * telemetry.istio.io Telemetry → Concord's normalised form: the tracing part, with Istio's
 * validation (randomSamplingPercentage in [0, 100]) and one rule of Concord's own: one tracing
 * entry (Istio only warns about several). Pure.
 *
 * Concord has one trace provider (the control plane's store, or the collector named by
 * OTEL_EXPORTER_OTLP_ENDPOINT) and exports Istio's standard metrics and logs as they are, so of
 * the Telemetry API it takes the sampling percentage; every other field is refused by name.
 */
import type { mesh } from '@concord/core';
import { type Checker, type Obj, type Segment, list, object, percentage } from './fields.js';
import { type AppRef, selector } from './security.js';

const ONE_PROVIDER = 'Concord has one trace provider: the control plane, or the collector named by OTEL_EXPORTER_OTLP_ENDPOINT';

export function telemetry(c: Checker, spec: Obj, at: Segment[]): { value: Omit<mesh.Telemetry, 'name'>; apps: AppRef[] } | null {
  const s = object(c, spec, at, ['selector', 'tracing'], {
    targetRef: 'targetRef (gateways and waypoints; Concord has neither): use selector',
    targetRefs: 'targetRefs (gateways and waypoints; Concord has neither): use selector',
    metrics: "metrics overrides (every process exports Istio's standard metrics on /metrics as they are)",
    accessLogging: 'access log configuration (each process logs JSON lines with trace ids)',
  });
  if (!s) return null;
  const apps: AppRef[] = [];
  const sel = selector(c, s.selector, [...at, 'selector'], apps);
  const value: Omit<mesh.Telemetry, 'name'> = {};
  if (sel) value.selector = sel;
  const tracing = list(c, s.tracing, [...at, 'tracing']);
  if (tracing && tracing.length > 1) c.error([...at, 'tracing'], `has ${tracing.length} entries; Concord takes one (${ONE_PROVIDER})`);
  const first = tracing?.[0];
  if (first !== undefined) {
    const tat = [...at, 'tracing', 0];
    const t = object(c, first, tat, ['randomSamplingPercentage', 'match', 'providers'], {
      customTags: 'custom span tags',
      disableSpanReporting: 'disableSpanReporting (set randomSamplingPercentage: 0 to record no new traces)',
      useRequestIdForTraceSampling: 'request-id based sampling (sampling is by trace id)',
      enableIstioTags: 'Istio span tags',
    });
    if (t) {
      if (t.match !== undefined) {
        const m = object(c, t.match, [...tat, 'match'], ['mode']);
        // CLIENT_AND_SERVER is Istio's default and what Concord does; the others split a
        // workload's client and server spans, which Concord does not.
        if (m && m.mode !== undefined && m.mode !== 'CLIENT_AND_SERVER')
          c.error([...tat, 'match', 'mode'], 'only CLIENT_AND_SERVER is supported (a workload samples its client and server spans alike)');
      }
      if (t.providers !== undefined) {
        const ps = list(c, t.providers, [...tat, 'providers']);
        if (ps && ps.length > 0) c.error([...tat, 'providers'], `naming providers is not supported: ${ONE_PROVIDER}`);
      }
      if (t.randomSamplingPercentage !== undefined) {
        const pct = percentage(c, t.randomSamplingPercentage, [...tat, 'randomSamplingPercentage']);
        if (pct !== undefined) value.randomSamplingPercentage = pct;
      }
    }
  }
  return { value, apps };
}
