/**
 * The recommendation canary: a VirtualService splitting traffic between the v1 and v2 subsets
 * of a DestinationRule, merged into whatever configuration is in force (Concord allows one
 * DestinationRule and one VirtualService per host, so existing ones are extended, not
 * duplicated). Pure, plus a small YAML writer for what is sent.
 */
import type { MeshResource } from './types';

export const CANARY_HOST = 'recommendation';
export const SUBSETS = ['v1', 'v2'] as const;

function shortHost(h: unknown): string {
  return typeof h === 'string' ? (h.split('.')[0] ?? h) : '';
}

export function destinationRuleFor(resources: readonly MeshResource[], host = CANARY_HOST): MeshResource | undefined {
  return resources.find((r) => r.kind === 'DestinationRule' && shortHost(r.spec.host) === host);
}

export function virtualServiceFor(resources: readonly MeshResource[], host = CANARY_HOST): MeshResource | undefined {
  return resources.find((r) => r.kind === 'VirtualService' && Array.isArray(r.spec.hosts) && r.spec.hosts.some((h) => shortHost(h) === host));
}

type Route = { destination?: { host?: string; subset?: string }; weight?: number };
type HttpRoute = { match?: unknown; route?: Route[]; [k: string]: unknown };

/** The default route: the last http route without a match (Istio's catch-all). */
function defaultRouteIndex(http: HttpRoute[]): number {
  for (let i = http.length - 1; i >= 0; i--) if (!http[i]?.match) return i;
  return -1;
}

/** The v2 share (0..100) the VirtualService gives now, or null when it does not split v1/v2. */
export function currentV2Weight(resources: readonly MeshResource[]): number | null {
  const vs = virtualServiceFor(resources);
  const http = (vs?.spec.http as HttpRoute[] | undefined) ?? [];
  const route = http[defaultRouteIndex(http)]?.route ?? [];
  const w = (subset: string) => route.filter((r) => r.destination?.subset === subset).reduce((s, r) => s + (r.weight ?? (route.length === 1 ? 100 : 0)), 0);
  const v1 = w('v1');
  const v2 = w('v2');
  if (v1 + v2 === 0) return null;
  return Math.round((v2 * 100) / (v1 + v2));
}

/** The documents to apply for a v2 share of `v2Weight` percent. */
export function canaryDocuments(resources: readonly MeshResource[], v2Weight: number): MeshResource[] {
  if (!Number.isInteger(v2Weight) || v2Weight < 0 || v2Weight > 100) throw new RangeError('the weight must be an integer from 0 to 100');
  const docs: MeshResource[] = [];
  const dr = destinationRuleFor(resources);
  const subsets = ((dr?.spec.subsets as Array<{ name: string; labels?: Record<string, string> }> | undefined) ?? []).slice();
  const missing = SUBSETS.filter((s) => !subsets.some((x) => x.name === s));
  if (!dr || missing.length > 0) {
    for (const s of missing) subsets.push({ name: s, labels: { version: s } });
    docs.push({
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: dr?.metadata.name ?? CANARY_HOST },
      spec: { ...(dr?.spec ?? {}), host: dr?.spec.host ?? CANARY_HOST, subsets },
    });
  }
  const vs = virtualServiceFor(resources);
  const route: Route[] = [
    { destination: { host: CANARY_HOST, subset: 'v1' }, weight: 100 - v2Weight },
    { destination: { host: CANARY_HOST, subset: 'v2' }, weight: v2Weight },
  ];
  const http = ((vs?.spec.http as HttpRoute[] | undefined) ?? []).map((r) => ({ ...r }));
  const i = defaultRouteIndex(http);
  if (i === -1) http.push({ route });
  else http[i] = { ...http[i], route };
  docs.push({
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: vs?.metadata.name ?? CANARY_HOST },
    spec: { ...(vs?.spec ?? {}), hosts: (vs?.spec.hosts as string[] | undefined) ?? [CANARY_HOST], http },
  });
  return docs;
}

const PLAIN = /^[A-Za-z_/][A-Za-z0-9_./-]*$/;
const RESERVED = /^(true|false|null|yes|no|on|off|y|n|~)$/i;

function scalar(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  const s = String(v);
  return PLAIN.test(s) && !RESERVED.test(s) ? s : JSON.stringify(s);
}

function emit(v: unknown, indent: string, out: string[], key: string | null): void {
  const prefix = key === null ? indent : `${indent}${scalar(key)}:`;
  if (Array.isArray(v)) {
    if (v.length === 0) {
      out.push(`${prefix}${key === null ? '' : ' '}[]`);
      return;
    }
    if (key !== null) out.push(prefix);
    for (const item of v) {
      const lines: string[] = [];
      emit(item, `${indent}  `, lines, null);
      const first = (lines[0] ?? '').slice(indent.length + 2);
      out.push(`${indent}- ${first}`, ...lines.slice(1));
    }
    return;
  }
  if (v && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    if (entries.length === 0) {
      out.push(`${prefix}${key === null ? '' : ' '}{}`);
      return;
    }
    if (key !== null) out.push(prefix);
    const inner = key === null ? indent : `${indent}  `;
    for (const [k, x] of entries) emit(x, inner, out, k);
    return;
  }
  out.push(key === null ? `${indent}${scalar(v)}` : `${prefix} ${scalar(v)}`);
}

/** A YAML stream of the documents (block style, strings quoted when they need it). */
export function toYaml(docs: readonly unknown[]): string {
  return docs
    .map((d) => {
      const lines: string[] = [];
      emit(d, '', lines, null);
      return lines.join('\n');
    })
    .join('\n---\n')
    .concat('\n');
}
