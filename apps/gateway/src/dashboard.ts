/**
 * GET /api/user-dashboard/:userId — the guide's aggregation, done properly: five upstream
 * calls in parallel under one deadline, each behind a circuit breaker; a failed or open part
 * falls back to its last good value (or empty) and is named in `degraded`.
 */
import { type Breaker, type BreakerPolicy, admit, newBreaker, onFailure, onSuccess, validBreakerPolicy } from '@concord/core';
import type { MeshClient, TraceContext } from '@concord/platform';

export type Part = 'user' | 'recentOrders' | 'wallet' | 'points' | 'recommendations';

interface PartSpec {
  part: Part;
  service: string;
  path: (userId: string) => string;
  pick: (body: unknown) => unknown;
  empty: unknown;
  /** Whether the value is the same for every user (cached once). */
  shared: boolean;
}

const whole = (b: unknown): unknown => (typeof b === 'object' && b !== null ? b : undefined);
const items = (b: unknown): unknown => {
  const list = (whole(b) as { items?: unknown } | undefined)?.items;
  return Array.isArray(list) ? list : undefined;
};

const PARTS: readonly PartSpec[] = [
  { part: 'user', service: 'user', path: (u) => `/internal/users/${encodeURIComponent(u)}`, pick: whole, empty: null, shared: false },
  { part: 'recentOrders', service: 'order', path: (u) => `/internal/orders?userId=${encodeURIComponent(u)}&limit=5`, pick: items, empty: [], shared: false },
  { part: 'wallet', service: 'payment', path: (u) => `/internal/wallets/${encodeURIComponent(u)}`, pick: whole, empty: null, shared: false },
  { part: 'points', service: 'points', path: (u) => `/internal/points/${encodeURIComponent(u)}`, pick: whole, empty: null, shared: false },
  { part: 'recommendations', service: 'recommendation', path: () => '/api/recommendations?limit=5', pick: items, empty: [], shared: true },
];

/** The upstream services of the dashboard, in part order. */
export const DASHBOARD_SERVICES = PARTS.map((p) => p.service);

const MAX_CACHED = 10_000;

/** What the breaker of one upstream has seen (for operators and tests). */
export interface BreakerStats {
  /** Calls that went out to the upstream. */
  calls: number;
  /** Calls the breaker refused without contacting the upstream. */
  shortCircuited: number;
  /** Calls that got an answer (a 2xx or a 4xx). */
  succeeded: number;
  /** Calls that failed (5xx, no answer, the deadline). */
  failed: number;
  /** Times the breaker went CLOSED/HALF_OPEN → OPEN. */
  opened: number;
}

type PartResult = { ok: true; value: unknown } | { ok: false; status?: number; reason: 'open' | 'failed' | 'deadline' };

export class Dashboard {
  readonly breakers = new Map<string, Breaker>();
  readonly stats = new Map<string, BreakerStats>();
  private readonly lastGood = new Map<string, unknown>();

  constructor(
    private readonly mesh: Pick<MeshClient, 'request'>,
    private readonly policy: BreakerPolicy,
    private readonly deadlineMs: number,
    private readonly now: () => number = Date.now,
    /** Told about every failed part (for logs). */
    private readonly onPartFailure: (part: Part, service: string, why: string) => void = () => {},
  ) {
    validBreakerPolicy(policy);
    for (const s of DASHBOARD_SERVICES) {
      this.breakers.set(s, newBreaker());
      this.stats.set(s, { calls: 0, shortCircuited: 0, succeeded: 0, failed: 0, opened: 0 });
    }
  }

  breakerOf(service: string): Breaker {
    return this.breakers.get(service) ?? newBreaker();
  }

  async build(userId: string, headers: Record<string, string>, trace?: TraceContext | null): Promise<{ status: number; body: Record<string, unknown> }> {
    // One deadline for the whole answer. A part still running when it fires is answered with
    // its fallback and counted as a failure of its upstream right then, whatever the call was
    // waiting on (the mesh is also told to give up, through the signal).
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        abort.abort(new DOMException('dashboard deadline', 'TimeoutError'));
        resolve();
      }, this.deadlineMs);
    });
    let results: PartResult[];
    try {
      results = await Promise.all(PARTS.map((p) => this.fetchPart(p, userId, headers, abort.signal, expired, trace)));
    } finally {
      clearTimeout(timer);
      if (!abort.signal.aborted) abort.abort();
    }
    const userResult = results[0] as PartResult;
    if (!userResult.ok && userResult.status === 404) return { status: 404, body: {} };
    const body: Record<string, unknown> = {};
    const degraded: Part[] = [];
    let userOk = false;
    results.forEach((r, i) => {
      const spec = PARTS[i] as PartSpec;
      const cacheKey = `${spec.part}:${spec.shared ? '*' : userId}`;
      if (r.ok) {
        body[spec.part] = r.value;
        this.remember(cacheKey, r.value);
        if (spec.part === 'user') userOk = true;
      } else {
        degraded.push(spec.part);
        const cached = this.lastGood.get(cacheKey);
        body[spec.part] = cached !== undefined ? cached : spec.empty;
        if (spec.part === 'user' && cached !== undefined) userOk = true;
      }
    });
    body.degraded = degraded;
    return { status: userOk ? 200 : 503, body };
  }

  private remember(key: string, value: unknown): void {
    if (value === undefined) return;
    this.lastGood.delete(key);
    if (this.lastGood.size >= MAX_CACHED) {
      const oldest = this.lastGood.keys().next().value;
      if (oldest !== undefined) this.lastGood.delete(oldest);
    }
    this.lastGood.set(key, value);
  }

  private stat(service: string): BreakerStats {
    return this.stats.get(service) as BreakerStats;
  }

  private settle(service: string, generation: number, ok: boolean): void {
    const before = this.breakerOf(service);
    const after = ok ? onSuccess(this.policy, before, generation) : onFailure(this.policy, before, this.now(), generation);
    this.breakers.set(service, after);
    const s = this.stat(service);
    if (ok) s.succeeded++;
    else s.failed++;
    if (after.state === 'OPEN' && before.state !== 'OPEN') s.opened++;
  }

  private fetchPart(p: PartSpec, userId: string, headers: Record<string, string>, signal: AbortSignal, expired: Promise<void>, trace?: TraceContext | null): Promise<PartResult> {
    const a = admit(this.policy, this.breakerOf(p.service), this.now());
    this.breakers.set(p.service, a.breaker);
    if (!a.allowed) {
      this.stat(p.service).shortCircuited++;
      return Promise.resolve({ ok: false, reason: 'open' });
    }
    this.stat(p.service).calls++;
    // Exactly one outcome per call reaches the breaker: the answer, or the deadline.
    let settled = false;
    const outcome = (ok: boolean, why?: string): void => {
      if (settled) return;
      settled = true;
      this.settle(p.service, a.generation, ok);
      if (!ok) this.onPartFailure(p.part, p.service, why ?? 'failed');
    };
    const call = (async (): Promise<PartResult> => {
      try {
        // The deadline is the signal's job. The mesh's own timeout is kept well above it: undici
        // starts a header timer early on a connection that replaced an aborted one, so a timeout
        // equal to the deadline fires before it after every hung call.
        const r = await this.mesh.request(p.service, { path: p.path(userId), headers, signal, timeoutMs: 2 * this.deadlineMs, trace });
        if (r.status === 200) {
          const value = p.pick(r.body);
          if (value === undefined) throw new Error(`${p.service} answered without the ${p.part} field`);
          outcome(true);
          return { ok: true, value };
        }
        // A 4xx (no wallet yet, say) is an answer, not an outage: it does not trip the breaker.
        outcome(r.status < 500, `answered ${r.status}`);
        return { ok: false, status: r.status, reason: 'failed' };
      } catch (err) {
        outcome(false, (err as Error).message);
        return { ok: false, reason: 'failed' };
      }
    })();
    const late = expired.then((): PartResult => {
      outcome(false, `no answer within the ${this.deadlineMs} ms deadline`);
      return { ok: false, reason: 'deadline' };
    });
    return Promise.race([call, late]);
  }
}
