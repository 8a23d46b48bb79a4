/**
 * What the console shows, assembled from the registry, the traffic model, the mesh
 * configuration and the trace store. Pure: every input is an argument.
 */
import type { EdgeStats, InstanceState, TrafficModel, WindowStats } from './traffic.js';
import { EXTERNAL } from './scrape.js';

export type Health = 'passing' | 'warning' | 'critical';

export interface InstanceInfo {
  id: string;
  service: string;
  version: string;
  address: string;
  port: number;
  status: Health;
  checkOutput: string;
  registeredAt: string;
  startedAt: string | null;
  mtls: boolean;
}

export interface TopologyNode {
  name: string;
  kind: 'service' | 'external';
  instances: number;
  passing: number;
  versions: string[];
  /** passing: every instance passes; warning: some do; critical: none (or none registered). */
  health: Health;
  /** What the service answered over the window. */
  rate: number;
  errorRate: number;
  p99Ms: number | null;
}

export interface TopologyEdge {
  source: string;
  destination: string;
  rate: number;
  errorRate: number;
  p99Ms: number | null;
  requests: number;
  lastSeenMs: number;
}

export interface Topology {
  generatedAt: string;
  windowSeconds: number;
  nodes: TopologyNode[];
  edges: TopologyEdge[];
}

/** The control plane is not part of the data plane's graph (it is listed with the services). */
export const NOT_IN_GRAPH = new Set(['control-plane']);

const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;

export function buildTopology(
  instances: readonly InstanceInfo[],
  edges: readonly EdgeStats[],
  served: ReadonlyMap<string, WindowStats>,
  windowMs: number,
  nowMs: number,
): Topology {
  const byService = new Map<string, InstanceInfo[]>();
  for (const i of instances) {
    if (NOT_IN_GRAPH.has(i.service)) continue;
    const list = byService.get(i.service) ?? [];
    list.push(i);
    byService.set(i.service, list);
  }
  const graphEdges = edges.filter((e) => !NOT_IN_GRAPH.has(e.source) && !NOT_IN_GRAPH.has(e.destination));
  const names = new Set(byService.keys());
  for (const e of graphEdges) {
    names.add(e.source);
    names.add(e.destination);
  }
  const nodes: TopologyNode[] = [...names].sort().map((name) => {
    const list = byService.get(name) ?? [];
    const passing = list.filter((i) => i.status === 'passing').length;
    const s = served.get(name);
    return {
      name,
      kind: name === EXTERNAL ? 'external' : 'service',
      instances: list.length,
      passing,
      versions: [...new Set(list.map((i) => i.version))].sort(),
      health: name === EXTERNAL ? 'passing' : passing === list.length && passing > 0 ? 'passing' : passing > 0 ? 'warning' : 'critical',
      rate: round(s?.rate ?? 0),
      errorRate: round(s?.errorRate ?? 0, 4),
      p99Ms: s?.p99Ms === null || s?.p99Ms === undefined ? null : round(s.p99Ms, 2),
    };
  });
  return {
    generatedAt: new Date(nowMs).toISOString(),
    windowSeconds: Math.round(windowMs / 1000),
    nodes,
    edges: graphEdges.map((e) => ({
      source: e.source,
      destination: e.destination,
      rate: round(e.rate),
      errorRate: round(e.errorRate, 4),
      p99Ms: e.p99Ms === null ? null : round(e.p99Ms, 2),
      requests: e.requests,
      lastSeenMs: e.lastSeenMs,
    })),
  };
}

export const BREAKER_STATES = ['closed', 'half-open', 'open'] as const;

export function breakerName(state: number): string {
  return BREAKER_STATES[state] ?? `unknown (${state})`;
}

/** Instances with what their last scrape said (memory, breakers, ejections). */
export function servicesView(
  instances: readonly InstanceInfo[],
  states: readonly InstanceState[],
  recentEjections: ReturnType<TrafficModel['recentEjections']>,
) {
  const stateOf = new Map(states.map((s) => [s.instanceId, s]));
  return {
    instances: instances.map((i) => {
      const s = stateOf.get(i.id);
      return { ...i, rssBytes: s?.rssBytes ?? null, lastScrapeMs: s?.lastScrapeMs ?? null, scrapeError: s?.error ?? null };
    }),
    breakers: states.flatMap((s) =>
      s.breakers.map((b) => ({ instanceId: s.instanceId, service: s.service, destination: b.destination, state: breakerName(b.state) })),
    ),
    ejected: states.flatMap((s) =>
      s.ejected.filter((e) => e.count > 0).map((e) => ({ instanceId: s.instanceId, service: s.service, destination: e.destination, count: e.count })),
    ),
    recentEjections,
  };
}

/** Routes of the gateway the console may call on an operator's behalf (`/api/` + path). */
const GATEWAY_WHITELIST: ReadonlyArray<{ method: string; path: RegExp }> = [
  { method: 'GET', path: /^admin\/sagas$/ },
  { method: 'GET', path: /^admin\/sagas\/[A-Za-z0-9._:-]{1,64}$/ },
  { method: 'POST', path: /^admin\/sagas\/[A-Za-z0-9._:-]{1,64}\/retry$/ },
  { method: 'GET', path: /^admin\/orders\/summary$/ },
  { method: 'GET', path: /^gateway\/breakers$/ },
];

const QUERY = /^[A-Za-z0-9_.~%=&+-]{0,1024}$/;

/**
 * The gateway path for a console proxy URL (`/api/console/gateway/<path>?<query>`), or null
 * when the console does not proxy it.
 */
export function gatewayTarget(method: string, rawUrl: string): string | null {
  const prefix = '/api/console/gateway/';
  if (!rawUrl.startsWith(prefix)) return null;
  const rest = rawUrl.slice(prefix.length);
  const q = rest.indexOf('?');
  const path = q === -1 ? rest : rest.slice(0, q);
  const query = q === -1 ? '' : rest.slice(q + 1);
  if (!QUERY.test(query)) return null;
  if (!GATEWAY_WHITELIST.some((r) => r.method === method && r.path.test(path))) return null;
  return `/api/${path}${query ? `?${query}` : ''}`;
}
