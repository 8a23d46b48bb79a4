/**
 * GET /api/user-dashboard/:userId — the guide's aggregation, done properly: five upstream
 * calls in parallel under one deadline, each behind a circuit breaker; a failed or open part
 * falls back to its last good value (or empty) and is named in `degraded`.
 */
import { type Breaker, type BreakerPolicy, admit, newBreaker, onFailure, onSuccess } from '@concord/core';
import type { MeshClient } from '@concord/platform';

export type Part = 'user' | 'recentOrders' | 'wallet' | 'points' | 'recommendations';

interface PartSpec {
  part: Part;
  service: string;
  path: (userId: string) => string;
  pick: (body: any) => unknown;
  empty: unknown;
}

const PARTS: PartSpec[] = [
  { part: 'user', service: 'user', path: (u) => `/internal/users/${encodeURIComponent(u)}`, pick: (b) => b, empty: null },
  { part: 'recentOrders', service: 'order', path: (u) => `/internal/orders?userId=${encodeURIComponent(u)}&limit=5`, pick: (b) => b.items, empty: [] },
  { part: 'wallet', service: 'payment', path: (u) => `/internal/wallets/${encodeURIComponent(u)}`, pick: (b) => b, empty: null },
  { part: 'points', service: 'points', path: (u) => `/internal/points/${encodeURIComponent(u)}`, pick: (b) => b, empty: null },
  { part: 'recommendations', service: 'recommendation', path: () => '/api/recommendations?limit=5', pick: (b) => b.items, empty: [] },
];

const MAX_CACHED = 10_000;

export class Dashboard {
  readonly breakers = new Map<string, Breaker>();
  private readonly lastGood = new Map<string, unknown>();

  constructor(
    private readonly mesh: MeshClient,
    private readonly policy: BreakerPolicy,
    private readonly deadlineMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  breakerOf(service: string): Breaker {
    return this.breakers.get(service) ?? newBreaker();
  }

  async build(userId: string, headers: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
    const deadline = AbortSignal.timeout(this.deadlineMs);
    const results = await Promise.all(PARTS.map((p) => this.fetchPart(p, userId, headers, deadline)));
    if (!results[0]!.ok && results[0]!.status === 404) return { status: 404, body: {} };
    const body: Record<string, unknown> = {};
    const degraded: Part[] = [];
    let userOk = false;
    results.forEach((r, i) => {
      const spec = PARTS[i] as PartSpec;
      const cacheKey = `${spec.part}:${spec.part === 'recommendations' ? '*' : userId}`;
      if (r.ok) {
        body[spec.part] = r.value;
        this.remember(cacheKey, r.value);
        if (spec.part === 'user') userOk = true;
      } else {
        degraded.push(spec.part);
        body[spec.part] = this.lastGood.has(cacheKey) ? this.lastGood.get(cacheKey) : spec.empty;
        if (spec.part === 'user' && this.lastGood.has(cacheKey)) userOk = true;
      }
    });
    body.degraded = degraded;
    return { status: userOk ? 200 : 503, body };
  }

  private remember(key: string, value: unknown): void {
    this.lastGood.delete(key);
    if (this.lastGood.size >= MAX_CACHED) {
      const oldest = this.lastGood.keys().next().value;
      if (oldest !== undefined) this.lastGood.delete(oldest);
    }
    this.lastGood.set(key, value);
  }

  private async fetchPart(p: PartSpec, userId: string, headers: Record<string, string>, signal: AbortSignal): Promise<{ ok: true; value: unknown } | { ok: false; status?: number }> {
    const a = admit(this.policy, this.breakerOf(p.service), this.now());
    this.breakers.set(p.service, a.breaker);
    if (!a.allowed) return { ok: false };
    try {
      const r = await this.mesh.request(p.service, { path: p.path(userId), headers, signal, timeoutMs: this.deadlineMs });
      if (r.status === 200) {
        this.breakers.set(p.service, onSuccess(this.policy, this.breakerOf(p.service)));
        return { ok: true, value: p.pick(r.body) };
      }
      // A 404 (no wallet yet, say) is an answer, not an outage: it does not trip the breaker.
      if (r.status < 500) {
        this.breakers.set(p.service, onSuccess(this.policy, this.breakerOf(p.service)));
        return { ok: false, status: r.status };
      }
      this.breakers.set(p.service, onFailure(this.policy, this.breakerOf(p.service), this.now()));
      return { ok: false };
    } catch {
      this.breakers.set(p.service, onFailure(this.policy, this.breakerOf(p.service), this.now()));
      return { ok: false };
    }
  }
}
