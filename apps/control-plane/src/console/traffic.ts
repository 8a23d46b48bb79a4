/**
 * The console's traffic model: scrapes of every instance in, per-edge and per-service rates,
 * error shares and p99 latencies out. Pure — time enters as arguments.
 *
 * Each scrape round becomes one tick holding what happened since the previous round: counter
 * increments per instance (a counter that went down is a restarted process, counted from zero,
 * as Prometheus' `rate` does), summed over instances. Ticks live in a bounded ring (by default
 * 10 minutes at 2 s), so any window within it is a sum of ticks — rate = increments / seconds,
 * p99 = `histogram_quantile(0.99, …)` over the summed bucket increments.
 *
 * Edges (`source → destination`) come from the calling side (`reporter="source"`), as Kiali
 * draws them; requests nobody in the mesh sent (browsers, tests) are the `external` edge of
 * the destination's own report. Per-service series are what each service answered
 * (`reporter="destination"`).
 */
import { EXTERNAL, type InstanceScrape, isErrorCode, splitRequestKey } from './scrape.js';

export interface Agg {
  requests: number;
  errors: number;
  /** Cumulative bucket increments: upper bound (ms) → observations at or below it. */
  buckets: Map<number, number>;
}

export interface Tick {
  atMs: number;
  seconds: number;
  /** `source|destination` → increments. */
  edges: Map<string, Agg>;
  /** destination service → what it answered. */
  services: Map<string, Agg>;
  ejections: Array<{ instanceId: string; destination: string; endpoint: string; count: number }>;
}

export interface RoundInput {
  instanceId: string;
  service: string;
  /** Null when this round's scrape failed (the previous values are kept). */
  scrape: InstanceScrape | null;
  /** The instance started after the model began watching: its first counters count in full. */
  fromZero: boolean;
  error?: string;
}

export interface WindowStats {
  requests: number;
  errors: number;
  /** Requests per second over the window. */
  rate: number;
  /** Share of requests that failed (5xx or no answer), 0..1; 0 without requests. */
  errorRate: number;
  /** Null when nothing was observed in the window. */
  p99Ms: number | null;
}

export interface EdgeStats extends WindowStats {
  source: string;
  destination: string;
  lastSeenMs: number;
}

export interface SeriesPoint {
  t: number;
  rate: number;
  /** Errors per second. */
  errors: number;
  errorRate: number;
  p99Ms: number | null;
}

export interface InstanceState {
  instanceId: string;
  service: string;
  lastScrapeMs: number | null;
  error: string | null;
  rssBytes: number | null;
  startTimeS: number | null;
  breakers: Array<{ destination: string; state: number }>;
  ejected: Array<{ destination: string; count: number }>;
}

interface Previous {
  startTimeS: number | null;
  requests: Map<string, number>;
  buckets: Map<string, Map<number, number>>;
  ejections: Map<string, number>;
}

export interface TrafficLimits {
  /** Ticks kept (10 minutes at 2 s: 300). */
  capacity: number;
  /** Distinct edges and services per tick; more are dropped (and counted). */
  maxKeys: number;
  /** Instances followed; more are ignored. */
  maxInstances: number;
  /** The nominal scrape interval (the step of the series). */
  intervalMs: number;
}

export const DEFAULT_TRAFFIC_LIMITS: TrafficLimits = { capacity: 300, maxKeys: 2000, maxInstances: 500, intervalMs: 2000 };

/**
 * Prometheus' `histogram_quantile`: linear interpolation inside the bucket holding the rank.
 * `buckets` are cumulative counts by upper bound and must include +Inf; a rank in the +Inf
 * bucket answers the highest finite bound. Null when there are no observations.
 */
export function histogramQuantile(q: number, buckets: ReadonlyMap<number, number>): number | null {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile must be within [0, 1], got ${q}`);
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const last = sorted[sorted.length - 1];
  if (!last || last[0] !== Number.POSITIVE_INFINITY) return null;
  // Counts must not decrease with the bound (increments from different instances may skew).
  let max = 0;
  for (const b of sorted) {
    max = Math.max(max, b[1]);
    b[1] = max;
  }
  const total = last[1];
  if (total <= 0) return null;
  if (sorted.length < 2) return null;
  const rank = q * total;
  let i = sorted.findIndex((b) => b[1] >= rank);
  if (i < 0) i = sorted.length - 1;
  const [upper, count] = sorted[i] as [number, number];
  if (upper === Number.POSITIVE_INFINITY) return (sorted[sorted.length - 2] as [number, number])[0];
  if (i === 0 && upper <= 0) return upper;
  const lower = i === 0 ? 0 : (sorted[i - 1] as [number, number])[0];
  const below = i === 0 ? 0 : (sorted[i - 1] as [number, number])[1];
  const inBucket = count - below;
  if (inBucket <= 0) return upper;
  return lower + (upper - lower) * ((rank - below) / inBucket);
}

/** An increment of a counter between two scrapes; a decrease means the process restarted. */
export function counterIncrease(prev: number | undefined, cur: number): number {
  if (prev === undefined) return cur;
  return cur >= prev ? cur - prev : cur;
}

function emptyAgg(): Agg {
  return { requests: 0, errors: 0, buckets: new Map() };
}

function aggIn(map: Map<string, Agg>, key: string): Agg {
  let a = map.get(key);
  if (!a) map.set(key, (a = emptyAgg()));
  return a;
}

function addAgg(into: Agg, from: Agg): void {
  into.requests += from.requests;
  into.errors += from.errors;
  for (const [le, n] of from.buckets) into.buckets.set(le, (into.buckets.get(le) ?? 0) + n);
}

function stats(a: Agg, seconds: number): WindowStats {
  return {
    requests: a.requests,
    errors: a.errors,
    rate: seconds > 0 ? a.requests / seconds : 0,
    errorRate: a.requests > 0 ? a.errors / a.requests : 0,
    p99Ms: histogramQuantile(0.99, a.buckets),
  };
}

export class TrafficModel {
  private readonly ticks: Tick[] = [];
  private readonly previous = new Map<string, Previous>();
  private readonly instances = new Map<string, InstanceState>();
  private lastRoundMs: number | null = null;
  /** Keys dropped because a tick was full (a label explosion somewhere). */
  droppedKeys = 0;

  constructor(readonly limits: TrafficLimits = DEFAULT_TRAFFIC_LIMITS) {}

  /** Records one scrape round. Instances absent from `round` are forgotten. */
  record(atMs: number, round: readonly RoundInput[]): Tick {
    // The first round is a baseline: it observed no interval.
    const seconds = this.lastRoundMs === null ? 0 : Math.max(0.001, (atMs - this.lastRoundMs) / 1000);
    this.lastRoundMs = atMs;
    const tick: Tick = { atMs, seconds, edges: new Map(), services: new Map(), ejections: [] };
    const present = new Set<string>();
    for (const r of round.slice(0, this.limits.maxInstances)) {
      present.add(r.instanceId);
      const state = this.instances.get(r.instanceId) ?? {
        instanceId: r.instanceId,
        service: r.service,
        lastScrapeMs: null,
        error: null,
        rssBytes: null,
        startTimeS: null,
        breakers: [],
        ejected: [],
      };
      state.service = r.service;
      this.instances.set(r.instanceId, state);
      if (!r.scrape) {
        state.error = r.error ?? 'scrape failed';
        continue;
      }
      const s = r.scrape;
      Object.assign(state, { lastScrapeMs: atMs, error: null, rssBytes: s.rssBytes, startTimeS: s.startTimeS, breakers: s.breakers, ejected: s.ejected });
      let prev = this.previous.get(r.instanceId);
      // A new process behind the same instance id: everything it counted is new.
      if (prev && s.startTimeS !== null && prev.startTimeS !== null && s.startTimeS !== prev.startTimeS) prev = emptyPrevious();
      if (!prev && r.fromZero) prev = emptyPrevious();
      if (prev) this.accumulate(tick, r.instanceId, prev, s);
      this.previous.set(r.instanceId, { startTimeS: s.startTimeS, requests: s.requests, buckets: s.buckets, ejections: s.ejections });
    }
    for (const id of [...this.instances.keys()]) {
      if (!present.has(id)) {
        this.instances.delete(id);
        this.previous.delete(id);
      }
    }
    this.ticks.push(tick);
    if (this.ticks.length > this.limits.capacity) this.ticks.splice(0, this.ticks.length - this.limits.capacity);
    return tick;
  }

  private aggOf(map: Map<string, Agg>, key: string): Agg | null {
    let a = map.get(key);
    if (!a) {
      if (map.size >= this.limits.maxKeys) {
        this.droppedKeys++;
        return null;
      }
      map.set(key, (a = emptyAgg()));
    }
    return a;
  }

  /** Where an increment of a `reporter|source|destination` series lands: an edge, a service, or both. */
  private targets(tick: Tick, reporter: string, source: string, destination: string): Agg[] {
    const out: Agg[] = [];
    if (reporter === 'source' || (reporter === 'destination' && source === EXTERNAL)) {
      const a = this.aggOf(tick.edges, `${source}|${destination}`);
      if (a) out.push(a);
    }
    if (reporter === 'destination') {
      const a = this.aggOf(tick.services, destination);
      if (a) out.push(a);
    }
    return out;
  }

  private accumulate(tick: Tick, instanceId: string, prev: Previous, s: InstanceScrape): void {
    for (const [key, value] of s.requests) {
      const inc = counterIncrease(prev.requests.get(key) ?? 0, value);
      if (inc <= 0) continue;
      const k = splitRequestKey(key);
      const error = isErrorCode(k.code);
      for (const a of this.targets(tick, k.reporter, k.source, k.destination)) {
        a.requests += inc;
        if (error) a.errors += inc;
      }
    }
    for (const [key, buckets] of s.buckets) {
      const [reporter = '', source = '', destination = ''] = key.split('|');
      const before = prev.buckets.get(key);
      const incs = new Map<number, number>();
      let any = false;
      for (const [le, n] of buckets) {
        const inc = counterIncrease(before?.get(le) ?? 0, n);
        incs.set(le, inc);
        if (inc > 0) any = true;
      }
      if (!any) continue;
      for (const a of this.targets(tick, reporter, source, destination)) {
        for (const [le, n] of incs) a.buckets.set(le, (a.buckets.get(le) ?? 0) + n);
      }
    }
    for (const [key, value] of s.ejections) {
      const inc = counterIncrease(prev.ejections.get(key) ?? 0, value);
      if (inc <= 0) continue;
      const [destination = '', endpoint = ''] = key.split('|');
      if (tick.ejections.length < this.limits.maxKeys) tick.ejections.push({ instanceId, destination, endpoint, count: inc });
    }
  }

  /** The ticks within `windowMs` of the newest one. */
  private window(windowMs: number): Tick[] {
    const newest = this.ticks[this.ticks.length - 1];
    if (!newest) return [];
    const from = newest.atMs - windowMs;
    const out: Tick[] = [];
    for (let i = this.ticks.length - 1; i >= 0; i--) {
      const t = this.ticks[i] as Tick;
      if (t.atMs <= from) break;
      out.push(t);
    }
    return out;
  }

  /** Every edge seen in the ring, with its numbers over the last `windowMs`. */
  edges(windowMs: number): EdgeStats[] {
    const inWindow = this.window(windowMs);
    const seconds = inWindow.reduce((s, t) => s + t.seconds, 0);
    const sums = new Map<string, Agg>();
    for (const t of inWindow) for (const [k, a] of t.edges) addAgg(aggIn(sums, k), a);
    const lastSeen = new Map<string, number>();
    for (const t of this.ticks) for (const [k, a] of t.edges) if (a.requests > 0) lastSeen.set(k, t.atMs);
    return [...lastSeen.entries()]
      .map(([k, seen]) => {
        const [source = '', destination = ''] = k.split('|');
        return { source, destination, lastSeenMs: seen, ...stats(sums.get(k) ?? emptyAgg(), seconds) };
      })
      .sort((a, b) => (a.source + a.destination < b.source + b.destination ? -1 : 1));
  }

  /** What each service answered over the last `windowMs`. */
  services(windowMs: number): Map<string, WindowStats> {
    const inWindow = this.window(windowMs);
    const seconds = inWindow.reduce((s, t) => s + t.seconds, 0);
    const sums = new Map<string, Agg>();
    for (const t of inWindow) for (const [k, a] of t.services) addAgg(aggIn(sums, k), a);
    return new Map([...sums].map(([k, a]) => [k, stats(a, seconds)]));
  }

  /** Every known service's series over the last `windowMs`, one point per tick, oldest first. */
  series(windowMs: number, only?: string): Map<string, SeriesPoint[]> {
    const inWindow = this.window(windowMs).reverse();
    const names = new Set<string>();
    for (const t of inWindow) for (const k of t.services.keys()) if (!only || k === only) names.add(k);
    if (only) names.add(only);
    const out = new Map<string, SeriesPoint[]>();
    for (const name of [...names].sort()) {
      out.set(
        name,
        inWindow.map((t) => {
          const s = stats(t.services.get(name) ?? emptyAgg(), t.seconds);
          return { t: t.atMs, rate: s.rate, errors: t.seconds > 0 ? s.errors / t.seconds : 0, errorRate: s.errorRate, p99Ms: s.p99Ms };
        }),
      );
    }
    return out;
  }

  /** Ejections seen over the last `windowMs`, newest first. */
  recentEjections(windowMs: number): Array<{ atMs: number; instanceId: string; destination: string; endpoint: string; count: number }> {
    return this.window(windowMs).flatMap((t) => t.ejections.map((e) => ({ atMs: t.atMs, ...e })));
  }

  instanceStates(): InstanceState[] {
    return [...this.instances.values()].sort((a, b) => (a.instanceId < b.instanceId ? -1 : 1));
  }

  get tickCount(): number {
    return this.ticks.length;
  }

  get stepMs(): number {
    return this.limits.intervalMs;
  }
}

function emptyPrevious(): Previous {
  return { startTimeS: null, requests: new Map(), buckets: new Map(), ejections: new Map() };
}
