/**
 * The mesh core modules composed the way the mesh client composes them, on a simulated clock:
 * route → weighted destination → subset → (per try) fault → outlier filter → balancer (excluding
 * tried endpoints) → upstream → outlier record → retry decision, under a route deadline. This
 * protects the acceptance behaviours end to end without sockets or timers.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Balancer, createBalancer } from '../src/mesh/balancers.js';
import { attemptBudget, callDeadline, remainingMs } from '../src/mesh/deadline.js';
import { decideFault } from '../src/mesh/fault.js';
import type { AttemptOutcome } from '../src/mesh/outcome.js';
import { OutlierDetector } from '../src/mesh/outlier.js';
import { decideRetry, resolveRetryPolicy } from '../src/mesh/retry.js';
import { compileVirtualService, pickDestination, type RouteMatcher } from '../src/mesh/route.js';
import { type LabelledEndpoint, resolveDestination } from '../src/mesh/subsets.js';
import type { DestinationRule, HttpRoute, VirtualService } from '../src/mesh/types.js';
import { assertShare, mulberry32 } from './mesh-helpers.js';

/** What endpoint `id` does with a request at `nowMs`. */
type Upstream = (id: string, nowMs: number, random: () => number) => { latencyMs: number; outcome: AttemptOutcome };

interface TryLog {
  endpoint: string | null;
  startMs: number;
  endMs: number;
  budgetMs: number;
  outcome: AttemptOutcome;
}

interface CallResult {
  status: number;
  startMs: number;
  endMs: number;
  tries: TryLog[];
}

class Mesh {
  nowMs = 0;
  readonly random: () => number;
  readonly detectors = new Map<string, OutlierDetector>();
  readonly balancers = new Map<string, Balancer>();
  readonly routes: RouteMatcher;

  constructor(
    vs: VirtualService,
    readonly rules: DestinationRule[],
    readonly endpoints: LabelledEndpoint[],
    readonly upstream: Upstream,
    seed: number,
  ) {
    this.random = mulberry32(seed);
    this.routes = compileVirtualService(vs); // once per configuration
  }

  #cluster(key: string, policy: ReturnType<typeof resolveDestination>) {
    if (!policy.ok) throw new Error(policy.error);
    let od = this.detectors.get(key);
    const outlier = policy.policy.outlierDetection;
    if (!od && outlier) {
      od = new OutlierDetector(outlier);
      this.detectors.set(key, od);
    }
    od?.setEndpoints(
      policy.endpoints.map((e) => e.id),
      this.nowMs,
    );
    let lb = this.balancers.get(key);
    if (!lb) {
      lb = createBalancer(policy.policy.loadBalancer, this.random);
      this.balancers.set(key, lb);
    }
    return { od, lb, endpoints: policy.endpoints };
  }

  call(req: { method: string; path: string; headers: Record<string, string> }): CallResult {
    const startMs = this.nowMs;
    const route = this.routes.match(req) as HttpRoute;
    const dest = pickDestination(route, this.random)!;
    const resolved = resolveDestination(this.rules, dest.destination, this.endpoints);
    const { od, lb, endpoints } = this.#cluster(`${dest.destination.host}/${dest.destination.subset ?? ''}`, resolved);
    const policy = resolveRetryPolicy(route.retries);
    const deadline = callDeadline(startMs, route.timeoutMs);
    const tried = new Set<string>();
    const tries: TryLog[] = [];
    for (let attempt = 1; ; attempt++) {
      const budget = attemptBudget(this.nowMs, deadline, policy.perTryTimeoutMs);
      if (budget.timeoutMs <= 0) return { status: 504, startMs, endMs: this.nowMs, tries };
      const t0 = this.nowMs;
      const fault = decideFault(route.fault, this.random);
      let outcome: AttemptOutcome;
      let endpoint: string | null = null;
      if (fault.delayMs >= budget.timeoutMs) {
        this.nowMs += budget.timeoutMs;
        outcome = { error: 'timeout' };
      } else {
        this.nowMs += fault.delayMs;
        if (fault.abortStatus !== null) {
          outcome = { status: fault.abortStatus, injected: true };
        } else {
          const candidates = od ? od.available(endpoints, this.nowMs) : endpoints;
          const ep = lb.pick(candidates, { exclude: tried });
          if (!ep) return { status: 503, startMs, endMs: this.nowMs, tries };
          endpoint = ep.id;
          tried.add(ep.id);
          const r = this.upstream(ep.id, this.nowMs, this.random);
          const left = budget.deadlineMs - this.nowMs;
          if (r.latencyMs >= left) {
            this.nowMs += left;
            outcome = { error: 'timeout' };
          } else {
            this.nowMs += r.latencyMs;
            outcome = r.outcome;
          }
          od?.record(ep.id, outcome, this.nowMs);
        }
      }
      tries.push({ endpoint, startMs: t0, endMs: this.nowMs, budgetMs: budget.timeoutMs, outcome });
      if ('status' in outcome && outcome.status < 500) return { status: outcome.status, startMs, endMs: this.nowMs, tries };
      const d = decideRetry(policy, attempt, outcome, remainingMs(deadline, this.nowMs), this.random);
      if (!d.retry) return { status: 'status' in outcome ? outcome.status : 504, startMs, endMs: this.nowMs, tries };
      this.nowMs += d.delayMs;
    }
  }
}

const reviewsRule = (extra: Partial<DestinationRule> = {}): DestinationRule => ({
  name: 'reviews',
  host: 'reviews',
  subsets: [
    { name: 'v1', labels: { version: 'v1' } },
    { name: 'v2', labels: { version: 'v2' } },
  ],
  ...extra,
});
const endpoints: LabelledEndpoint[] = [
  { id: 'v1-a', labels: { version: 'v1' } },
  { id: 'v1-b', labels: { version: 'v1' } },
  { id: 'v2-a', labels: { version: 'v2' } },
];
const GET = (headers: Record<string, string> = {}) => ({ method: 'GET', path: '/reviews/1', headers });
const healthy: Upstream = () => ({ latencyMs: 5, outcome: { status: 200 } });

test('end-user: jason → v2, everyone else → v1; a 90/10 split lands within ±3 % over 2,000 calls', () => {
  const vs: VirtualService = {
    name: 'reviews',
    hosts: ['reviews'],
    http: [
      { match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: { host: 'reviews', subset: 'v2' }, weight: 100 }] },
      {
        match: [],
        route: [
          { destination: { host: 'reviews', subset: 'v1' }, weight: 90 },
          { destination: { host: 'reviews', subset: 'v2' }, weight: 10 },
        ],
      },
    ],
  };
  const served: string[] = [];
  const recording: Upstream = (id) => {
    served.push(id);
    return { latencyMs: 1, outcome: { status: 200 } };
  };
  const mesh = new Mesh(vs, [reviewsRule()], endpoints, recording, 1);
  for (let i = 0; i < 100; i++) mesh.call(GET({ 'end-user': 'jason' }));
  assert.ok(served.every((id) => id.startsWith('v2')));
  served.length = 0;
  for (let i = 0; i < 2000; i++) mesh.call(GET());
  assertShare(served.filter((id) => id.startsWith('v2')).length, 2000, 10, 3, 'v2 share');
});

test('an upstream failing half its calls with 503 (one of two instances broken), attempts: 3 → ≥ 99 % success; the broken one is ejected and probed again', () => {
  const vs: VirtualService = {
    name: 'reviews',
    hosts: ['reviews'],
    http: [{ match: [], route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 100 }], retries: { attempts: 3, retryOn: ['5xx'] } }],
  };
  const rule = reviewsRule({
    trafficPolicy: {
      loadBalancer: { simple: 'ROUND_ROBIN' },
      outlierDetection: { consecutive5xxErrors: 5, intervalMs: 10_000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 50 },
    },
  });
  const hits = new Map<string, number[]>();
  const upstream: Upstream = (id, now) => {
    const list = hits.get(id) ?? [];
    list.push(now);
    hits.set(id, list);
    return { latencyMs: 2, outcome: { status: id === 'v1-b' ? 503 : 200 } };
  };
  const mesh = new Mesh(vs, [rule], endpoints, upstream, 2);
  let ok = 0;
  for (let i = 0; i < 10_000; i++) {
    if (mesh.call(GET()).status === 200) ok++;
    mesh.nowMs += 10;
    if (i % 100 === 0) mesh.detectors.get('reviews/v1')?.sweep(mesh.nowMs);
  }
  assert.ok(ok / 10_000 >= 0.99, `success ${ok / 10_000}`);
  const stats = mesh.detectors.get('reviews/v1')!.stats(mesh.nowMs);
  assert.ok(stats.ejectionsTotal >= 2, `ejections ${stats.ejectionsTotal}`);
  assert.equal(stats.ejectionsSkipped, 0);
  const bad = hits.get('v1-b')!;
  assert.ok(bad.length < 200, `the broken instance saw ${bad.length} tries, not half of 10,000`);
  // After its first ejection ended it was tried again (and ejected again, for longer).
  const firstEjectionEnd = bad[4]! + 30_000;
  assert.ok(
    bad.some((t) => t >= firstEjectionEnd),
    'traffic returned after baseEjectionTime',
  );
  assert.ok(!bad.some((t) => t > bad[4]! && t < firstEjectionEnd), 'no traffic while ejected');
});

test('faults compose with retries: a 50 % abort with attempts: 3 fails ≈ 6.25 %; without a retry policy the abort percentage shows as configured', () => {
  const withRetries: VirtualService = {
    name: 'reviews',
    hosts: ['reviews'],
    http: [
      {
        match: [],
        route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 100 }],
        fault: { abort: { httpStatus: 503, percentage: 50 } },
        retries: { attempts: 3, retryOn: ['gateway-error'] },
      },
    ],
  };
  const m1 = new Mesh(withRetries, [reviewsRule()], endpoints, healthy, 3);
  let failed = 0;
  for (let i = 0; i < 10_000; i++) if (m1.call(GET()).status === 503) failed++;
  assertShare(failed, 10_000, 6.25, 1, 'aborts surviving 4 tries');

  const noRetries: VirtualService = {
    ...withRetries,
    http: [{ ...withRetries.http[0]!, retries: undefined, fault: { abort: { httpStatus: 503, percentage: 10 }, delay: { fixedDelayMs: 7, percentage: 20 } } }],
  };
  const m2 = new Mesh(noRetries, [reviewsRule()], endpoints, healthy, 4);
  let aborted = 0;
  let delayed = 0;
  for (let i = 0; i < 2000; i++) {
    const r = m2.call(GET());
    if (r.status === 503) aborted++;
    if (r.endMs - r.startMs >= 7) delayed++;
  }
  assertShare(aborted, 2000, 10, 3, 'abort share (default policy does not retry injected aborts)');
  assertShare(delayed, 2000, 20, 3, 'delay share');
});

test('perTryTimeout and the route timeout both hold; slow tries are cut and retried within the deadline', () => {
  const vs: VirtualService = {
    name: 'reviews',
    hosts: ['reviews'],
    http: [
      {
        match: [],
        route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 100 }],
        timeoutMs: 300,
        retries: { attempts: 5, perTryTimeoutMs: 100, retryOn: ['5xx'] },
        fault: { delay: { fixedDelayMs: 150, percentage: 5 } },
      },
    ],
  };
  const slowSometimes: Upstream = (_id, _now, random) => ({ latencyMs: random() < 0.3 ? 1000 : 20, outcome: { status: 200 } });
  const mesh = new Mesh(vs, [reviewsRule()], endpoints, slowSometimes, 5);
  let ok = 0;
  let cut = 0;
  for (let i = 0; i < 5000; i++) {
    const r = mesh.call(GET());
    assert.ok(r.endMs - r.startMs <= 300, `call took ${r.endMs - r.startMs} ms`);
    for (const t of r.tries) {
      assert.ok(t.endMs - t.startMs <= 100, `try took ${t.endMs - t.startMs} ms`);
      assert.ok(t.endMs <= r.startMs + 300);
      if ('error' in t.outcome && t.outcome.error === 'timeout') cut++;
    }
    if (r.status === 200) ok++;
    mesh.nowMs += 1;
  }
  assert.ok(cut > 1000, `${cut} tries were cut by the per-try timeout`);
  assert.ok(ok / 5000 > 0.95, `success ${ok / 5000}`);
});
