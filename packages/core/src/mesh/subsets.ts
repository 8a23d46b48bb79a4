/**
 * From a route destination to the endpoints that may serve it and the traffic policy that
 * governs them, following Istio's DestinationRule.
 *
 * ```ts
 * findDestinationRule(rules, host)                       // → DestinationRule | undefined
 * resolveDestination(rules, destination, endpoints)      // → { ok, endpoints, policy } | { ok: false, error }
 * subsetEndpoints(subset, endpoints)                     // → endpoints whose labels match the subset
 * effectivePolicy(rule, subsetName?)                     // → TrafficPolicy (subset overrides rule)
 * ```
 *
 * - Endpoints carry labels; Concord builds them from the registry entry's `Meta`, so the
 *   conventional `version` label is `Meta.version`.
 * - A subset selects the endpoints whose labels include all of the subset's labels.
 * - A destination that names a subset its DestinationRule does not define (or names a subset
 *   when no DestinationRule exists) cannot be served: Istio answers 503 there (no cluster);
 *   `resolveDestination` returns `{ ok: false }` and the caller answers 503.
 * - Several DestinationRules for one host: the first in configuration order wins (Istio merges
 *   non-conflicting rules in one namespace; Concord's validator should refuse duplicates).
 * - The effective policy of a subset: each top-level field of the subset's `trafficPolicy`
 *   (`loadBalancer`, `connectionPool`, `outlierDetection`, `tls`) replaces the rule-level field
 *   as a whole; fields the subset leaves out are inherited. This is Istio's merge (istio
 *   pilot/pkg/networking, `MergeTrafficPolicy`, later `MergeSubsetTrafficPolicy`): e.g. a
 *   subset-level `connectionPool` with only `maxConnections` drops a rule-level
 *   `http1MaxPendingRequests`.
 */
import { matchesSelector } from './labels.js';
import type { Destination, DestinationRule, Subset, TrafficPolicy } from './types.js';
import { serviceOfHost } from './types.js';

export interface LabelledEndpoint {
  id: string;
  labels: Readonly<Record<string, string>>;
}

export type DestinationResult<T> = { ok: true; endpoints: T[]; policy: TrafficPolicy; rule: DestinationRule | undefined } | { ok: false; error: string };

export function findDestinationRule(rules: readonly DestinationRule[], host: string): DestinationRule | undefined {
  const service = serviceOfHost(host);
  return rules.find((r) => serviceOfHost(r.host) === service);
}

export function subsetEndpoints<T extends LabelledEndpoint>(subset: Subset, endpoints: readonly T[]): T[] {
  return endpoints.filter((e) => matchesSelector(subset.labels, e.labels));
}

export function effectivePolicy(rule: DestinationRule | undefined, subsetName?: string): TrafficPolicy {
  const top = rule?.trafficPolicy ?? {};
  const sub = subsetName === undefined ? undefined : rule?.subsets.find((s) => s.name === subsetName)?.trafficPolicy;
  if (!sub) return { ...top };
  return {
    ...top,
    ...(sub.loadBalancer ? { loadBalancer: sub.loadBalancer } : {}),
    ...(sub.connectionPool ? { connectionPool: sub.connectionPool } : {}),
    ...(sub.outlierDetection ? { outlierDetection: sub.outlierDetection } : {}),
    ...(sub.tls ? { tls: sub.tls } : {}),
  };
}

/** `endpoints` are all registered, passing endpoints of `destination.host`. */
export function resolveDestination<T extends LabelledEndpoint>(
  rules: readonly DestinationRule[],
  destination: Destination,
  endpoints: readonly T[],
): DestinationResult<T> {
  const rule = findDestinationRule(rules, destination.host);
  if (destination.subset === undefined) return { ok: true, endpoints: [...endpoints], policy: effectivePolicy(rule), rule };
  const subset = rule?.subsets.find((s) => s.name === destination.subset);
  if (!subset) {
    const why = rule ? `DestinationRule ${rule.name} has no subset "${destination.subset}"` : `no DestinationRule defines subsets for ${destination.host}`;
    return { ok: false, error: `${why} (route to ${destination.host}/${destination.subset})` };
  }
  return { ok: true, endpoints: subsetEndpoints(subset, endpoints), policy: effectivePolicy(rule, subset.name), rule };
}
