/**
 * Outlier detection for the endpoints of one destination (one host+subset, Envoy's "cluster"):
 * passive health checking that ejects an endpoint after consecutive failures and lets it back
 * after a while. Pure: time comes in as `nowMs`; there are no timers.
 *
 * ```ts
 * const od = new OutlierDetector(policy.outlierDetection, { alwaysEjectOneHost?, maxEjectionTimeMs? });
 * od.setEndpoints(ids, nowMs)            // on every registry change
 * od.record(id, outcome, nowMs)          // after every attempt → OutlierEvent[] (log / metrics)
 * od.available(endpoints, nowMs)         // candidates for the balancer (minHealthPercent applied)
 * od.isEjected(id, nowMs)                // query
 * od.sweep(nowMs)                        // call every `intervalMs`: settles and decays, → events
 * od.health(nowMs) / od.stats(nowMs)     // for metrics and the console
 * od.configure(policy, options?)         // config push; state is kept
 * ```
 *
 * Semantics (Envoy docs intro/arch_overview/upstream/outlier.rst and
 * source/common/upstream/outlier_detection_impl.cc; Istio DestinationRule OutlierDetection):
 * - Results: a 5xx response increments the consecutive-5xx counter; 502/503/504 also the
 *   consecutive-gateway counter (any other 5xx resets the gateway counter); any non-5xx response
 *   resets both. Transport failures (connect-failure, reset, refused-stream, timeout) count as
 *   5xx AND gateway errors, as Envoy maps local-origin errors when
 *   `split_external_local_origin_errors` is false (Istio's setting). Outcomes that never reached
 *   the endpoint are ignored: fault-injected statuses (`injected: true`) and pool `overflow`.
 *   Results recorded while the endpoint is ejected are ignored (Envoy resets the counters when it
 *   brings the host back).
 * - Thresholds: `consecutive5xxErrors` (Istio default 5; 0 disables) and
 *   `consecutiveGatewayErrors` (default 0 = disabled). Reaching one attempts an ejection and
 *   resets that counter, whether or not the ejection happened (Envoy).
 * - maxEjectionPercent, the rule Concord applies (current Envoy `DetectorImpl::ejectHost`):
 *   an endpoint is ejected only if 100 × (ejected now + 1) / (endpoints) <= maxEjectionPercent.
 *   So with Istio's default 10 % and fewer than 10 endpoints nothing is ever ejected — set
 *   maxEjectionPercent explicitly for small pools (50 for two endpoints, 100 to allow all).
 *   Older Envoy (≤ 1.10 docs) ejected the first host regardless ("If no hosts have been ejected,
 *   Envoy will eject the host immediately"); current Envoy makes that opt-in as
 *   `always_eject_one_host` (default false), gRPC's xDS outlier detection always does it
 *   (grpc-java #9489). Concord offers it as the `alwaysEjectOneHost` option, default false.
 * - Ejection time: baseEjectionTime × a multiplier that grows by one per ejection and decays by
 *   one per `sweep` while the endpoint stays healthy for a whole interval, capped at
 *   `maxEjectionTimeMs` (Envoy's `max_ejection_time`, default max(300 s, base); Istio does not
 *   expose it). Ejection jitter (Envoy `max_ejection_time_jitter`, default 0) is not modelled.
 * - Un-ejection is evaluated lazily and exactly: an endpoint ejected at t for d ms is available
 *   again at t + d, whatever the sweeps. Envoy only un-ejects at its interval sweeps (so up to one
 *   `interval` late); Concord is exact so "gets traffic again after baseEjectionTime" holds to the
 *   millisecond. `sweep` reports the un-ejections (events) and decays the multipliers; the shell
 *   calls it every `intervalMs`.
 * - minHealthPercent (Istio; Envoy's panic threshold): when fewer than minHealthPercent % of the
 *   endpoints are available, `available` returns all of them (outlier detection is suspended).
 *   Default 0: never; if every endpoint is ejected, `available` returns [] and the caller
 *   answers 503 (no healthy upstream).
 */
import { invariant } from '../assert.js';
import { type AttemptOutcome, is5xxOutcome, isGatewayErrorOutcome, isStatusOutcome } from './outcome.js';
import type { OutlierDetection } from './types.js';

export interface OutlierOptions {
  /** Allow one ejection even when it exceeds maxEjectionPercent (Envoy `always_eject_one_host`). Default false. */
  alwaysEjectOneHost?: boolean;
  /** Upper bound of one ejection's duration (Envoy `max_ejection_time`). Default max(300 s, base). */
  maxEjectionTimeMs?: number;
}

export type EjectionReason = 'consecutive-5xx' | 'consecutive-gateway-errors';

export type OutlierEvent =
  | { type: 'eject'; id: string; reason: EjectionReason; atMs: number; untilMs: number; timesEjected: number }
  /** The threshold was reached but maxEjectionPercent forbade the ejection (Envoy `ejections_overflow`). */
  | { type: 'eject-skipped'; id: string; reason: EjectionReason; atMs: number }
  | { type: 'uneject'; id: string; atMs: number };

export interface EndpointHealth {
  id: string;
  ejected: boolean;
  /** When the current ejection ends, or null. */
  ejectedUntilMs: number | null;
  timesEjected: number;
  /** The multiplier the next ejection's base time is scaled by, minus one. */
  backoff: number;
  consecutive5xx: number;
  consecutiveGatewayErrors: number;
}

export interface OutlierStats {
  endpoints: number;
  ejectedNow: number;
  /** Ejections performed since the detector was created. */
  ejectionsTotal: number;
  /** Ejections refused by maxEjectionPercent since the detector was created. */
  ejectionsSkipped: number;
}

export const DEFAULT_CONSECUTIVE_5XX = 5;
export const DEFAULT_MAX_EJECTION_TIME_MS = 300_000;

interface EndpointRecord {
  consecutive5xx: number;
  consecutiveGateway: number;
  ejectedUntilMs: number | null;
  lastUnejectedMs: number | null;
  backoff: number;
  timesEjected: number;
}

interface Resolved {
  consecutive5xx: number;
  consecutiveGateway: number;
  intervalMs: number;
  baseMs: number;
  maxMs: number;
  maxPercent: number;
  minHealthPercent: number;
  alwaysEjectOne: boolean;
}

function resolve(policy: OutlierDetection, options: OutlierOptions): Resolved {
  const nonNegInt = (v: number | undefined, d: number) => (v !== undefined && Number.isFinite(v) && v >= 0 ? Math.floor(v) : d);
  const baseMs = Math.max(1, Number.isFinite(policy.baseEjectionTimeMs) ? policy.baseEjectionTimeMs : 30_000);
  const clampPct = (v: number | undefined, d: number) => (v !== undefined && Number.isFinite(v) ? Math.min(100, Math.max(0, v)) : d);
  return {
    consecutive5xx: nonNegInt(policy.consecutive5xxErrors, DEFAULT_CONSECUTIVE_5XX),
    consecutiveGateway: nonNegInt(policy.consecutiveGatewayErrors, 0),
    intervalMs: Math.max(1, Number.isFinite(policy.intervalMs) ? policy.intervalMs : 10_000),
    baseMs,
    maxMs: Math.max(baseMs, options.maxEjectionTimeMs ?? DEFAULT_MAX_EJECTION_TIME_MS),
    maxPercent: clampPct(policy.maxEjectionPercent, 10),
    minHealthPercent: clampPct(policy.minHealthPercent, 0),
    alwaysEjectOne: options.alwaysEjectOneHost === true,
  };
}

export class OutlierDetector {
  #cfg: Resolved;
  readonly #endpoints = new Map<string, EndpointRecord>();
  #ejectionsTotal = 0;
  #ejectionsSkipped = 0;

  constructor(policy: OutlierDetection, options: OutlierOptions = {}) {
    this.#cfg = resolve(policy, options);
  }

  /** New policy from a config push; per-endpoint state is kept. */
  configure(policy: OutlierDetection, options: OutlierOptions = {}): void {
    this.#cfg = resolve(policy, options);
  }

  /** The current endpoint set. New ones start healthy; removed ones are forgotten (Envoy). */
  setEndpoints(ids: readonly string[], nowMs: number): OutlierEvent[] {
    const events = this.#settleAll(nowMs);
    const keep = new Set(ids);
    for (const id of [...this.#endpoints.keys()]) if (!keep.has(id)) this.#endpoints.delete(id);
    for (const id of keep) {
      if (!this.#endpoints.has(id)) {
        this.#endpoints.set(id, { consecutive5xx: 0, consecutiveGateway: 0, ejectedUntilMs: null, lastUnejectedMs: null, backoff: 0, timesEjected: 0 });
      }
    }
    return events;
  }

  /** The result of one attempt sent to `id`. Unknown endpoints are ignored. */
  record(id: string, outcome: AttemptOutcome, nowMs: number): OutlierEvent[] {
    const rec = this.#endpoints.get(id);
    if (!rec) return [];
    if (isStatusOutcome(outcome) ? outcome.injected === true : outcome.error === 'overflow') return [];
    const events: OutlierEvent[] = [];
    this.#settle(id, rec, nowMs, events);
    if (rec.ejectedUntilMs !== null) return events;
    if (is5xxOutcome(outcome)) {
      rec.consecutive5xx++;
      rec.consecutiveGateway = isGatewayErrorOutcome(outcome) ? rec.consecutiveGateway + 1 : 0;
    } else {
      rec.consecutive5xx = 0;
      rec.consecutiveGateway = 0;
    }
    const cfg = this.#cfg;
    if (cfg.consecutiveGateway > 0 && rec.consecutiveGateway >= cfg.consecutiveGateway) {
      rec.consecutiveGateway = 0;
      events.push(this.#tryEject(id, rec, 'consecutive-gateway-errors', nowMs));
    }
    if (rec.ejectedUntilMs === null && cfg.consecutive5xx > 0 && rec.consecutive5xx >= cfg.consecutive5xx) {
      rec.consecutive5xx = 0;
      events.push(this.#tryEject(id, rec, 'consecutive-5xx', nowMs));
    }
    return events;
  }

  isEjected(id: string, nowMs: number): boolean {
    const rec = this.#endpoints.get(id);
    return rec !== undefined && ejectedAt(rec, nowMs);
  }

  /**
   * The endpoints that may take traffic now: those not ejected (unknown ids count as healthy),
   * or all of them when fewer than minHealthPercent % are healthy.
   */
  available<T extends { id: string }>(endpoints: readonly T[], nowMs: number): T[] {
    const healthy = endpoints.filter((e) => !this.isEjected(e.id, nowMs));
    if (healthy.length * 100 < this.#cfg.minHealthPercent * endpoints.length) return [...endpoints];
    return healthy;
  }

  /** The periodic pass (every `intervalMs`): reports un-ejections, decays ejection multipliers. */
  sweep(nowMs: number): OutlierEvent[] {
    const events = this.#settleAll(nowMs);
    for (const rec of this.#endpoints.values()) {
      if (rec.ejectedUntilMs === null && rec.backoff > 0 && rec.lastUnejectedMs !== null && nowMs - rec.lastUnejectedMs >= this.#cfg.intervalMs) {
        rec.backoff--;
      }
    }
    return events;
  }

  health(nowMs: number): EndpointHealth[] {
    return [...this.#endpoints].map(([id, rec]) => {
      const ejected = ejectedAt(rec, nowMs);
      return {
        id,
        ejected,
        ejectedUntilMs: ejected ? rec.ejectedUntilMs : null,
        timesEjected: rec.timesEjected,
        backoff: rec.backoff,
        consecutive5xx: ejected ? 0 : rec.consecutive5xx,
        consecutiveGatewayErrors: ejected ? 0 : rec.consecutiveGateway,
      };
    });
  }

  stats(nowMs: number): OutlierStats {
    return {
      endpoints: this.#endpoints.size,
      ejectedNow: this.#ejectedCount(nowMs),
      ejectionsTotal: this.#ejectionsTotal,
      ejectionsSkipped: this.#ejectionsSkipped,
    };
  }

  #ejectedCount(nowMs: number): number {
    let n = 0;
    for (const rec of this.#endpoints.values()) if (ejectedAt(rec, nowMs)) n++;
    return n;
  }

  #tryEject(id: string, rec: EndpointRecord, reason: EjectionReason, nowMs: number): OutlierEvent {
    const cfg = this.#cfg;
    const active = this.#ejectedCount(nowMs);
    const allowed = (100 * (active + 1)) / this.#endpoints.size <= cfg.maxPercent || (cfg.alwaysEjectOne && active === 0);
    if (!allowed) {
      this.#ejectionsSkipped++;
      return { type: 'eject-skipped', id, reason, atMs: nowMs };
    }
    // Envoy grows the multiplier while base × multiplier < max + base, so it settles one step past the cap.
    if (rec.backoff * cfg.baseMs < cfg.maxMs + cfg.baseMs) rec.backoff++;
    const untilMs = nowMs + Math.min(cfg.baseMs * rec.backoff, cfg.maxMs);
    rec.ejectedUntilMs = untilMs;
    rec.timesEjected++;
    rec.consecutive5xx = 0;
    rec.consecutiveGateway = 0;
    this.#ejectionsTotal++;
    invariant(untilMs > nowMs, `outlier: ejection of ${id} must end after it starts`);
    return { type: 'eject', id, reason, atMs: nowMs, untilMs, timesEjected: rec.timesEjected };
  }

  #settle(id: string, rec: EndpointRecord, nowMs: number, events: OutlierEvent[]): void {
    if (rec.ejectedUntilMs !== null && nowMs >= rec.ejectedUntilMs) {
      events.push({ type: 'uneject', id, atMs: rec.ejectedUntilMs });
      rec.lastUnejectedMs = rec.ejectedUntilMs;
      rec.ejectedUntilMs = null;
      rec.consecutive5xx = 0;
      rec.consecutiveGateway = 0;
    }
  }

  #settleAll(nowMs: number): OutlierEvent[] {
    const events: OutlierEvent[] = [];
    for (const [id, rec] of this.#endpoints) this.#settle(id, rec, nowMs, events);
    return events;
  }
}

function ejectedAt(rec: EndpointRecord, nowMs: number): boolean {
  return rec.ejectedUntilMs !== null && nowMs < rec.ejectedUntilMs;
}
