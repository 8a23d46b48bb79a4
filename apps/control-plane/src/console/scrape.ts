/**
 * What the console keeps from one scrape of one instance: Istio request counters and duration
 * buckets folded down to the labels the console shows (reporter, source, destination, response
 * code), the breaker and outlier gauges, the ejection counters, and the process's memory and
 * start time. Pure.
 */
import { type PromSample, parsePromText } from './prom-text.js';

export const REQUESTS = 'istio_requests_total';
export const BUCKETS = 'istio_request_duration_milliseconds_bucket';
export const BREAKER_STATE = 'concord_circuit_breaker_state';
export const EJECTED_NOW = 'concord_outlier_ejected_endpoints';
export const EJECTIONS = 'concord_outlier_ejections_total';
export const RSS = 'process_resident_memory_bytes';
export const START_TIME = 'process_start_time_seconds';

const WANTED = new Set([REQUESTS, BUCKETS, BREAKER_STATE, EJECTED_NOW, EJECTIONS, RSS, START_TIME]);

/** The source of a request nobody in the mesh claims (a browser, curl, a test). */
export const EXTERNAL = 'external';

export interface InstanceScrape {
  /** Request counters keyed `reporter|source|destination|code`. */
  requests: Map<string, number>;
  /** Cumulative bucket counts keyed `reporter|source|destination` → upper bound (ms) → count. */
  buckets: Map<string, Map<number, number>>;
  /** Breaker state per destination: 0 closed, 1 half-open, 2 open. */
  breakers: Array<{ destination: string; state: number }>;
  /** Endpoints ejected right now, per destination. */
  ejected: Array<{ destination: string; count: number }>;
  /** Ejection counters keyed `destination|endpoint`. */
  ejections: Map<string, number>;
  rssBytes: number | null;
  startTimeS: number | null;
  /** Samples of the kept families that could not be read. */
  malformed: number;
}

/** `order.default.svc.cluster.local` → `order`. */
export function shortService(name: string): string {
  const dot = name.indexOf('.');
  return dot === -1 ? name : name.slice(0, dot);
}

export function requestKey(reporter: string, source: string, destination: string, code: string): string {
  return `${reporter}|${source}|${destination}|${code}`;
}

export function splitRequestKey(key: string): { reporter: string; source: string; destination: string; code: string } {
  const [reporter = '', source = '', destination = '', code = ''] = key.split('|');
  return { reporter, source, destination, code };
}

function pairKey(s: PromSample): { reporter: string; source: string; destination: string } | null {
  const reporter = s.labels.reporter;
  if (reporter !== 'source' && reporter !== 'destination') return null;
  const destination = s.labels.destination_service_name || shortService(s.labels.destination_service ?? '');
  if (!destination) return null;
  let source = s.labels.source_workload || 'unknown';
  if (source === 'unknown') source = EXTERNAL;
  return { reporter, source: clean(source), destination: clean(destination) };
}

/** Label values become parts of `|`-joined keys. */
function clean(v: string): string {
  return v.replaceAll('|', '_').slice(0, 128);
}

export function summarizeScrape(text: string, maxSamples = 200_000): InstanceScrape {
  const parsed = parsePromText(text, (n) => WANTED.has(n), maxSamples);
  const out: InstanceScrape = {
    requests: new Map(),
    buckets: new Map(),
    breakers: [],
    ejected: [],
    ejections: new Map(),
    rssBytes: null,
    startTimeS: null,
    malformed: parsed.malformed,
  };
  for (const s of parsed.samples) {
    if (!Number.isFinite(s.value)) continue;
    switch (s.name) {
      case REQUESTS: {
        const p = pairKey(s);
        if (!p) break;
        const key = requestKey(p.reporter, p.source, p.destination, clean(s.labels.response_code ?? ''));
        out.requests.set(key, (out.requests.get(key) ?? 0) + s.value);
        break;
      }
      case BUCKETS: {
        const p = pairKey(s);
        const le = s.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.labels.le);
        if (!p || Number.isNaN(le)) break;
        const key = `${p.reporter}|${p.source}|${p.destination}`;
        let b = out.buckets.get(key);
        if (!b) out.buckets.set(key, (b = new Map()));
        b.set(le, (b.get(le) ?? 0) + s.value);
        break;
      }
      case BREAKER_STATE:
        out.breakers.push({ destination: shortService(s.labels.destination_service ?? ''), state: s.value });
        break;
      case EJECTED_NOW:
        out.ejected.push({ destination: shortService(s.labels.destination_service ?? ''), count: s.value });
        break;
      case EJECTIONS: {
        const key = `${clean(shortService(s.labels.destination_service ?? ''))}|${clean(s.labels.endpoint ?? '')}`;
        out.ejections.set(key, (out.ejections.get(key) ?? 0) + s.value);
        break;
      }
      case RSS:
        out.rssBytes = s.value;
        break;
      case START_TIME:
        out.startTimeS = s.value;
        break;
    }
  }
  return out;
}

/** A code that counts as an error: 5xx, or 0 (no answer at all: refused, reset, timed out). */
export function isErrorCode(code: string): boolean {
  const n = Number(code);
  return code === '0' || (Number.isInteger(n) && n >= 500 && n <= 599);
}
