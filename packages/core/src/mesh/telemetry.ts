/**
 * A workload's trace sampling from Telemetry resources (Istio's Telemetry API, tracing only).
 *
 * ```ts
 * tracingSampling(telemetries, workloadLabels)   // → { percentage: 10, telemetry: 'mesh-default' } | null
 * ```
 *
 * Istio's hierarchy: a resource whose `selector` matches the workload overrides the mesh-wide one
 * (no selector), field by field — a workload resource that leaves `randomSamplingPercentage`
 * out inherits the mesh-wide value. Validation allows one resource per selector; should several
 * still match (different selectors matching the same workload), the first by name wins
 * (`governing` in labels.ts, as for PeerAuthentication). `null`: no resource says, the
 * process's own sampler (OTEL_TRACES_SAMPLER) stays in force.
 */
import { governing } from './labels.js';
import type { Telemetry, TracingSampling } from './types.js';

export function tracingSampling(
  telemetries: readonly Telemetry[],
  workloadLabels: Readonly<Record<string, string>>,
): TracingSampling | null {
  const { specific, meshWide: wide } = governing(telemetries, workloadLabels);
  for (const t of [specific, wide]) {
    if (t?.randomSamplingPercentage !== undefined) return { percentage: t.randomSamplingPercentage, telemetry: t.name };
  }
  return null;
}
