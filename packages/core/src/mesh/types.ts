/**
 * The mesh configuration after validation: Istio's VirtualService, DestinationRule,
 * PeerAuthentication, AuthorizationPolicy and Telemetry (its tracing sampling), normalised
 * (durations in ms, percentages as numbers 0..100, hosts reduced to service names, retryOn as a
 * list). The control plane
 * produces it from Istio YAML; every data plane consumes it. Pure data.
 */

export interface StringMatch {
  exact?: string;
  prefix?: string;
  /** RE2-style regular expression; the whole value must match (Istio's semantics). */
  regex?: string;
}

export interface HttpMatchRequest {
  name?: string;
  uri?: StringMatch;
  method?: StringMatch;
  /** Header names are lower-case. */
  headers?: Record<string, StringMatch>;
  queryParams?: Record<string, StringMatch>;
  ignoreUriCase?: boolean;
}

export interface Destination {
  /** The service name (short host). */
  host: string;
  subset?: string;
}

export interface HeaderOperations {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}

export interface Headers {
  request?: HeaderOperations;
  response?: HeaderOperations;
}

export interface HttpRouteDestination {
  destination: Destination;
  /** Relative weight, as in Istio (0 means never; when all are omitted, traffic splits evenly). */
  weight: number;
  headers?: Headers;
}

export type RetryOn = '5xx' | 'gateway-error' | 'reset' | 'connect-failure' | 'refused-stream' | 'retriable-4xx' | 'retriable-status-codes' | `${number}`;

export interface HttpRetry {
  attempts: number;
  perTryTimeoutMs?: number;
  /** Conditions (Envoy's x-envoy-retry-on names) and bare status codes such as "503". */
  retryOn: RetryOn[];
  retryRemoteLocalities?: boolean;
}

export interface HttpFaultInjection {
  delay?: { fixedDelayMs: number; percentage: number };
  abort?: { httpStatus: number; percentage: number };
}

export interface HttpRoute {
  name?: string;
  /** Empty: matches every request. Several: any of them (OR); fields within one: all (AND). */
  match: HttpMatchRequest[];
  route: HttpRouteDestination[];
  timeoutMs?: number;
  retries?: HttpRetry;
  fault?: HttpFaultInjection;
  headers?: Headers;
  mirror?: Destination;
  /** Share of requests mirrored, 0..100 (Istio's default is 100 when mirror is set). */
  mirrorPercentage?: number;
}

export interface VirtualService {
  name: string;
  /** Service names this applies to. */
  hosts: string[];
  http: HttpRoute[];
}

export type LbSimple = 'ROUND_ROBIN' | 'RANDOM' | 'LEAST_REQUEST' | 'LEAST_CONN' | 'PASSTHROUGH' | 'UNSPECIFIED';

export interface LoadBalancerSettings {
  simple?: LbSimple;
  consistentHash?: { httpHeaderName?: string; useSourceIp?: boolean; httpQueryParameterName?: string; minimumRingSize?: number };
}

export interface ConnectionPoolSettings {
  /** tcp.maxConnections: connections per endpoint. */
  maxConnections?: number;
  /** tcp.connectTimeout. */
  connectTimeoutMs?: number;
  /** http.http1MaxPendingRequests: requests waiting for a connection; beyond → 503 at once. */
  http1MaxPendingRequests?: number;
  /** http.maxRequestsPerConnection: a connection is closed after this many (0 = unlimited). */
  maxRequestsPerConnection?: number;
  /** http.http2MaxRequests: requests in flight to the destination. */
  http2MaxRequests?: number;
  /** http.maxRetries: retries outstanding at once across the destination. */
  maxRetries?: number;
  idleTimeoutMs?: number;
}

export interface OutlierDetection {
  consecutive5xxErrors?: number;
  consecutiveGatewayErrors?: number;
  intervalMs: number;
  baseEjectionTimeMs: number;
  maxEjectionPercent: number;
  minHealthPercent?: number;
}

export type TlsMode = 'DISABLE' | 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';

export interface TrafficPolicy {
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: ConnectionPoolSettings;
  outlierDetection?: OutlierDetection;
  tls?: { mode: TlsMode };
}

export interface Subset {
  name: string;
  labels: Record<string, string>;
  trafficPolicy?: TrafficPolicy;
}

export interface DestinationRule {
  name: string;
  host: string;
  trafficPolicy?: TrafficPolicy;
  subsets: Subset[];
}

export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

export interface PeerAuthentication {
  name: string;
  /** matchLabels on the workload (`app: payment`); absent = every workload. */
  selector?: Record<string, string>;
  mode: MtlsMode;
}

export interface AuthorizationRule {
  from?: Array<{ principals?: string[]; notPrincipals?: string[] }>;
  to?: Array<{ paths?: string[]; notPaths?: string[]; methods?: string[]; notMethods?: string[] }>;
}

export interface AuthorizationPolicy {
  name: string;
  selector?: Record<string, string>;
  action: 'ALLOW' | 'DENY';
  /** No rules: an ALLOW policy matches nothing (denies all); a DENY policy matches nothing. */
  rules: AuthorizationRule[];
}

/**
 * telemetry.istio.io Telemetry, its tracing part: which share of new traces the selected
 * workloads sample. A field left out is inherited from the mesh-wide resource (telemetry.ts).
 */
export interface Telemetry {
  name: string;
  /** Workload labels; absent: the whole mesh. */
  selector?: Record<string, string>;
  /** 0–100: the percentage of traces started at these workloads that are recorded. */
  randomSamplingPercentage?: number;
}

/** A workload's trace sampling set by a Telemetry resource: the percentage and the resource's name. */
export interface TracingSampling {
  percentage: number;
  telemetry: string;
}

/**
 * OTEL_TRACES_EXPORTER's values a data plane takes, and reports: `otlp` (the default: the control
 * plane, or the collector OTEL_EXPORTER_OTLP_* names) and `none`, under which spans are still
 * sampled and recorded (the trace context, sampled flags and ids are as with `otlp`) and go
 * nowhere. Telling recording's cost from exporting's is what `none` is for here (README, bench:ab).
 */
export const TRACES_EXPORTERS = ['otlp', 'none'] as const;
export type TracesExporter = (typeof TRACES_EXPORTERS)[number];

/** What a data plane reports about its tracing with each acknowledgement. */
export interface TracingReport {
  /** False with CONCORD_TRACING=false: nothing is recorded whatever the mesh says. */
  enabled: boolean;
  /** The Telemetry resource setting its sampling; null: its OTEL_TRACES_SAMPLER decides. */
  sampling: TracingSampling | null;
  /** OTEL_TRACES_EXPORTER (absent: an older data plane, otlp). */
  exporter?: TracesExporter;
}

export interface MeshConfig {
  /** Monotonic version of the whole configuration. */
  version: number;
  virtualServices: VirtualService[];
  destinationRules: DestinationRule[];
  peerAuthentications: PeerAuthentication[];
  authorizationPolicies: AuthorizationPolicy[];
  telemetries: Telemetry[];
}

export function emptyMeshConfig(version = 0): MeshConfig {
  return { version, virtualServices: [], destinationRules: [], peerAuthentications: [], authorizationPolicies: [], telemetries: [] };
}

/** `recommendation`, `recommendation.default`, `recommendation.default.svc.cluster.local` → `recommendation`. */
export function serviceOfHost(host: string): string {
  return host.split('.')[0] ?? host;
}

/** The SPIFFE id of a workload in Concord's trust domain. */
export function spiffeId(service: string): string {
  return `spiffe://concord.local/ns/default/sa/${service}`;
}

/** Istio principals drop the `spiffe://` scheme: `concord.local/ns/default/sa/order`. */
export function principalOf(spiffe: string): string {
  return spiffe.replace(/^spiffe:\/\//, '');
}
