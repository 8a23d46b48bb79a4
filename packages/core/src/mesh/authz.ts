/**
 * Inbound access control: Istio's AuthorizationPolicy evaluation and PeerAuthentication mode
 * resolution for one workload. Pure.
 *
 * ```ts
 * authorize(policies, workloadLabels, { principal, method, path })
 *   // → { allowed, reason: 'no-allow-policy' | 'allow-matched' | 'deny-matched' | 'no-allow-matched', policy? }
 * peerAuthenticationMode(peerAuthentications, workloadLabels)   // → { mode, policy? }
 * matchesValue(pattern, value)                                  // Istio's exact / prefix* / *suffix / * match
 * ```
 *
 * Evaluation (Istio security docs, "Authorization policy precedence"; CUSTOM is not supported):
 * only policies whose `selector` matches the workload's labels apply (no selector: all
 * workloads). If any applicable DENY policy matches the request → deny. Else, if there is no
 * applicable ALLOW policy → allow. Else, if any ALLOW policy matches → allow. Else → deny.
 *
 * A policy matches when any of its rules matches; a policy without rules matches nothing (so an
 * ALLOW policy without rules denies everything, "allow-nothing"; `rules: [{}]` allows everything).
 * A rule matches when its `from` (any source; absent: any) and its `to` (any operation; absent:
 * any) both match. Within one source/operation every field present must match: `principals` /
 * `paths` / `methods` — one of the values; `notPrincipals` / `notPaths` / `notMethods` — none of
 * them.
 *
 * Values (istio/api security/v1beta1/authorization.proto, Rule): "Exact match: abc will match on
 * value abc. Prefix match: abc* will match on value abc and abcd. Suffix match: *abc will match on
 * value abc and xabc. Presence match: * will match when value is not empty." Matching is
 * case-sensitive. Paths are compared without the query string (Istio's `request.url_path`).
 * A plaintext request has no principal (null): `principals` never match it, and `notPrincipals:
 * ["*"]` does — Istio's way of saying "requests without mTLS identity".
 *
 * PeerAuthentication: a policy with a `selector` matching the workload beats one without
 * (workload-specific over namespace/mesh-wide, Istio). Among several of the same kind Istio takes
 * the oldest (then by name); Concord's config has no creation time, so the first by name wins.
 * No applicable policy: PERMISSIVE (Istio's default). Port-level modes are not supported.
 */
import { governing, matchesSelector } from './labels.js';
import { pathOf } from './request.js';
import type { AuthorizationPolicy, AuthorizationRule, MtlsMode, PeerAuthentication } from './types.js';

export interface AuthzRequest {
  /** The peer's principal, `concord.local/ns/default/sa/order`; null for plaintext. */
  principal: string | null;
  method: string;
  /** With or without the query string. */
  path: string;
}

export type AuthzDecision =
  | { allowed: true; reason: 'no-allow-policy' | 'allow-matched'; policy?: string }
  | { allowed: false; reason: 'deny-matched' | 'no-allow-matched'; policy?: string };

export function matchesValue(pattern: string, value: string | null): boolean {
  if (value === null) return false;
  if (pattern === '*') return value.length > 0;
  if (pattern.length > 1 && pattern.endsWith('*')) return value.startsWith(pattern.slice(0, -1));
  if (pattern.length > 1 && pattern.startsWith('*')) return value.endsWith(pattern.slice(1));
  return value === pattern;
}

function anyOf(patterns: readonly string[] | undefined, value: string | null): boolean {
  return patterns?.some((p) => matchesValue(p, value)) === true;
}

/** A field "matches" when absent, or when `in` has a match and `notIn` has none. */
function field(inList: readonly string[] | undefined, notIn: readonly string[] | undefined, value: string | null): boolean {
  if (inList !== undefined && !anyOf(inList, value)) return false;
  return !anyOf(notIn, value);
}

function ruleMatches(rule: AuthorizationRule, req: AuthzRequest, urlPath: string): boolean {
  const fromOk = rule.from === undefined || rule.from.length === 0 || rule.from.some((s) => field(s.principals, s.notPrincipals, req.principal));
  if (!fromOk) return false;
  return (
    rule.to === undefined || rule.to.length === 0 || rule.to.some((op) => field(op.paths, op.notPaths, urlPath) && field(op.methods, op.notMethods, req.method))
  );
}

function policyMatches(policy: AuthorizationPolicy, req: AuthzRequest, urlPath: string): boolean {
  return policy.rules.some((r) => ruleMatches(r, req, urlPath));
}

export function authorize(policies: readonly AuthorizationPolicy[], workloadLabels: Readonly<Record<string, string>>, req: AuthzRequest): AuthzDecision {
  const applicable = policies.filter((p) => matchesSelector(p.selector, workloadLabels));
  const urlPath = pathOf(req.path);
  for (const p of applicable) {
    if (p.action === 'DENY' && policyMatches(p, req, urlPath)) return { allowed: false, reason: 'deny-matched', policy: p.name };
  }
  const allows = applicable.filter((p) => p.action === 'ALLOW');
  if (allows.length === 0) return { allowed: true, reason: 'no-allow-policy' };
  const hit = allows.find((p) => policyMatches(p, req, urlPath));
  if (hit) return { allowed: true, reason: 'allow-matched', policy: hit.name };
  return { allowed: false, reason: 'no-allow-matched' };
}

export function peerAuthenticationMode(
  policies: readonly PeerAuthentication[],
  workloadLabels: Readonly<Record<string, string>>,
): { mode: MtlsMode; policy?: string } {
  const { specific, meshWide } = governing(policies, workloadLabels);
  const p = specific ?? meshWide;
  return p ? { mode: p.mode, policy: p.name } : { mode: 'PERMISSIVE' };
}
