/** The shapes the control plane's APIs answer (see apps/control-plane/src/console/routes.ts). */

export type Health = 'passing' | 'warning' | 'critical';

export interface TopologyNode {
  name: string;
  kind: 'service' | 'external';
  instances: number;
  passing: number;
  versions: string[];
  health: Health;
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

export interface Instance {
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
  rssBytes: number | null;
  lastScrapeMs: number | null;
  scrapeError: string | null;
}

export interface ServicesView {
  instances: Instance[];
  breakers: Array<{ instanceId: string; service: string; destination: string; state: string }>;
  ejected: Array<{ instanceId: string; service: string; destination: string; count: number }>;
  recentEjections: Array<{ atMs: number; instanceId: string; destination: string; endpoint: string; count: number }>;
}

export interface ResourceStatus {
  kind: string;
  name: string;
  state: 'applied' | 'rejected';
  version: number;
  source: string;
  appliedAt?: string;
  rejectedAt?: string;
  reason?: string;
  inForceVersion?: number;
}

export interface TraceSummary {
  traceId: string;
  rootService: string;
  rootName: string;
  startTimeUnixNano: string;
  durationMs: number;
  spanCount: number;
  services: string[];
  status: 'OK' | 'ERROR';
}

export interface Span {
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  service: string;
  instance: string;
  name: string;
  kind: string;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  status: 'UNSET' | 'OK' | 'ERROR';
  statusMessage?: string;
  attributes: Record<string, string | number | boolean>;
}

export interface Snapshot {
  at: string;
  topology: Topology;
  services: ServicesView;
  config: { version: number; resources: ResourceStatus[] };
  traces: { stored: number; spans: number; latest: TraceSummary[] };
}

export interface SeriesPoint {
  t: number;
  rate: number;
  errors: number;
  errorRate: number;
  p99Ms: number | null;
}

export interface SagaSummary {
  id: string;
  type: string;
  status: string;
  step: string;
  attempts: number;
  error: string | null;
  updatedAt: string;
  createdAt?: string;
}

export interface SagaEvent {
  step: string;
  phase: string;
  event: string;
  attempt: number;
  detail: string | null;
  at: string;
}

export interface SagaDetail extends SagaSummary {
  data: unknown;
  events: SagaEvent[];
}

/** An Istio resource as submitted (YAML as JSON). */
export interface MeshResource {
  apiVersion?: string;
  kind: string;
  metadata: { name: string; [k: string]: unknown };
  spec: Record<string, unknown>;
}

export interface Problem {
  type?: string;
  title?: string;
  status: number;
  detail?: string;
  errors?: Array<{ path: string; message: string }>;
}
