/**
 * Endpoint choice for one attempt, per DestinationRule `loadBalancer`. A balancer holds only its
 * own small state (the round-robin cursor, the cached hash ring); randomness is injected.
 *
 * ```ts
 * const lb = createBalancer(policy.loadBalancer, random);   // one per destination (host+subset)
 * lb.pick(endpoints, { exclude, hashKey, load })            // → endpoint | undefined (none given)
 * hashKeyOf(policy.loadBalancer, req, sourceKey?)           // → string | null (consistent hashing input)
 * hash32(text)                                              // the ring's 32-bit hash
 * ```
 *
 * - `endpoints` are the candidates after subset filtering and outlier ejection (see outlier.ts);
 *   the panic threshold is not applied here.
 * - `exclude`: endpoints this request already tried. A retry then goes to another endpoint when one
 *   exists, as Istio's default `previous_hosts` retry host predicate does; when every candidate is
 *   excluded, the exclusion is ignored (Envoy likewise gives up after
 *   `host_selection_retry_max_attempts` and takes what it drew).
 * - ROUND_ROBIN: in order over the candidates (balancer.ts `roundRobinPicker`).
 * - RANDOM: uniform over the candidates.
 * - LEAST_REQUEST (and the deprecated alias LEAST_CONN): power of two choices — two distinct
 *   candidates drawn at random, the one with fewer requests in flight (`load`, supplied by the
 *   caller, e.g. from pool.ts) wins, the first drawn on a tie. Envoy's "all weights equal"
 *   algorithm with its default `choice_count` 2 (intro/arch_overview/upstream/load_balancing);
 *   Envoy may draw the same host twice, Concord draws two distinct ones.
 * - UNSPECIFIED or no `loadBalancer`: LEAST_REQUEST, Istio's default since 1.14.
 *   PASSTHROUGH (use the caller's original destination) has no meaning for a proxyless client and
 *   is treated as ROUND_ROBIN.
 * - `consistentHash`: a ring hash (Karger et al.; Envoy's RING_HASH). A key goes to the first
 *   virtual node clockwise from hash32(key). Every endpoint gets `minimumRingSize` virtual nodes
 *   at hash32(`${id}_${k}`) (default 1024, as Istio and Envoy), so the ring has at least
 *   `minimumRingSize` nodes. Envoy instead gives each of n hosts ceil(minimumRingSize / n), which
 *   changes every host's node count when n changes and moves extra keys; with a per-endpoint
 *   count that does not depend on n, adding or removing one of n endpoints moves only the ~1/n
 *   of the keys that endpoint gains or loses. The total is capped at MAX_RING_SIZE nodes (Envoy
 *   allows 8M), so past MAX_RING_SIZE / minimumRingSize endpoints (256 at the default) the
 *   per-endpoint count shrinks and that guarantee weakens. With `exclude`, the walk continues
 *   clockwise to the next endpoint not excluded. Without a key (header absent) Envoy hashes a
 *   random value; so does Concord.
 * - Hash key (`hashKeyOf`): `httpHeaderName` → that header's value; `httpQueryParameterName` →
 *   that parameter's value; `useSourceIp` → the `sourceKey` the caller passes (the calling
 *   workload's address or name). `httpCookie` is not supported by the config types.
 */
import { randomPicker, roundRobinPicker } from '../balancer.js';
import { type Random, randomIndex, randomUnit } from './random.js';
import { type HeaderValues, headerValue, queryOf } from './request.js';
import type { LoadBalancerSettings } from './types.js';

export type BalancerKind = 'ROUND_ROBIN' | 'RANDOM' | 'LEAST_REQUEST' | 'RING_HASH';

export interface PickOptions {
  /** Endpoints already tried by this request. */
  exclude?: ReadonlySet<string>;
  /** Consistent-hashing input (RING_HASH); absent: a random point on the ring. */
  hashKey?: string | null;
  /** Requests in flight per endpoint (LEAST_REQUEST); absent: all equal. */
  load?: (id: string) => number;
}

export interface Balancer {
  readonly kind: BalancerKind;
  pick<T extends { id: string }>(endpoints: readonly T[], opts?: PickOptions): T | undefined;
}

export const DEFAULT_MIN_RING_SIZE = 1024;
/** Cap on the ring's total virtual nodes (memory per destination: 8 bytes each). */
export const MAX_RING_SIZE = 1 << 18;
/** At most this many endpoints take part in one ring (the first by id); far beyond any real destination. */
const OWNER_SLOTS = 1 << 18;

export function balancerKind(settings: LoadBalancerSettings | undefined): BalancerKind {
  if (settings?.consistentHash) return 'RING_HASH';
  switch (settings?.simple) {
    case 'ROUND_ROBIN':
    case 'PASSTHROUGH':
      return 'ROUND_ROBIN';
    case 'RANDOM':
      return 'RANDOM';
    default:
      return 'LEAST_REQUEST';
  }
}

export function createBalancer(settings: LoadBalancerSettings | undefined, random: Random): Balancer {
  switch (balancerKind(settings)) {
    case 'ROUND_ROBIN':
      return roundRobinBalancer();
    case 'RANDOM':
      return randomBalancer(random);
    case 'LEAST_REQUEST':
      return leastRequestBalancer(random);
    case 'RING_HASH':
      return ringHashBalancer(random, settings?.consistentHash?.minimumRingSize);
  }
}

/** The candidates left after `exclude`; all of them when nothing would be left. */
function candidates<T extends { id: string }>(endpoints: readonly T[], exclude: ReadonlySet<string> | undefined): readonly T[] {
  if (!exclude || exclude.size === 0) return endpoints;
  const left = endpoints.filter((e) => !exclude.has(e.id));
  return left.length > 0 ? left : endpoints;
}

export function roundRobinBalancer(): Balancer {
  const rr = roundRobinPicker<{ id: string }>();
  return {
    kind: 'ROUND_ROBIN',
    pick<T extends { id: string }>(endpoints: readonly T[], opts?: PickOptions) {
      return rr.pick(candidates(endpoints, opts?.exclude)) as T | undefined;
    },
  };
}

export function randomBalancer(random: Random): Balancer {
  const r = randomPicker<{ id: string }>(() => randomUnit(random));
  return {
    kind: 'RANDOM',
    pick<T extends { id: string }>(endpoints: readonly T[], opts?: PickOptions) {
      return r.pick(candidates(endpoints, opts?.exclude)) as T | undefined;
    },
  };
}

export function leastRequestBalancer(random: Random): Balancer {
  return {
    kind: 'LEAST_REQUEST',
    pick<T extends { id: string }>(endpoints: readonly T[], opts?: PickOptions) {
      const c = candidates(endpoints, opts?.exclude);
      if (c.length <= 1) return c[0];
      const i = randomIndex(random, c.length);
      let j = randomIndex(random, c.length - 1);
      if (j >= i) j++;
      const a = c[i] as T;
      const b = c[j] as T;
      const load = opts?.load;
      if (!load) return a;
      return load(b.id) < load(a.id) ? b : a;
    },
  };
}

interface Ring {
  key: string;
  ids: string[];
  /** Sorted node positions. */
  points: Uint32Array;
  /** points[i] belongs to ids[owners[i]]. */
  owners: Uint32Array;
}

export function ringHashBalancer(random: Random, minimumRingSize: number = DEFAULT_MIN_RING_SIZE): Balancer {
  const size = Math.min(
    MAX_RING_SIZE,
    Math.max(1, Number.isFinite(minimumRingSize) && minimumRingSize > 0 ? Math.floor(minimumRingSize) : DEFAULT_MIN_RING_SIZE),
  );
  let ring: Ring | null = null;
  return {
    kind: 'RING_HASH',
    pick<T extends { id: string }>(endpoints: readonly T[], opts?: PickOptions) {
      if (endpoints.length === 0) return undefined;
      const byId = new Map<string, T>();
      for (const e of endpoints) if (!byId.has(e.id)) byId.set(e.id, e);
      const ids = [...byId.keys()].sort().slice(0, OWNER_SLOTS);
      const key = ids.join('\n');
      if (ring?.key !== key) ring = buildRing(key, ids, size);
      const h = opts?.hashKey == null ? Math.floor(randomUnit(random) * 2 ** 32) : hash32(opts.hashKey);
      const start = firstAtOrAfter(ring.points, h);
      const exclude = opts?.exclude;
      const n = ring.points.length;
      for (let step = 0; step < n; step++) {
        const id = ring.ids[ring.owners[(start + step) % n] as number] as string;
        if (!exclude?.has(id)) return byId.get(id);
      }
      // Every endpoint excluded: ignore the exclusion.
      return byId.get(ring.ids[ring.owners[start % n] as number] as string);
    },
  };
}

function buildRing(key: string, ids: string[], size: number): Ring {
  // Every endpoint gets the same number of virtual nodes whatever the endpoint count (up to the
  // total cap), so adding or removing an endpoint moves only the keys it gains or loses.
  const perEndpoint = Math.max(1, Math.min(size, Math.floor(MAX_RING_SIZE / ids.length)));
  const n = perEndpoint * ids.length;
  // Sort (hash, owner) pairs as one number: hash × 2^18 + owner < 2^50, exact in a double.
  const packed = new Float64Array(n);
  let k = 0;
  for (let o = 0; o < ids.length; o++) {
    for (let v = 0; v < perEndpoint; v++) packed[k++] = hash32(`${ids[o]}_${v}`) * OWNER_SLOTS + o;
  }
  packed.sort();
  const points = new Uint32Array(n);
  const owners = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const x = packed[i] as number;
    const owner = x % OWNER_SLOTS;
    points[i] = (x - owner) / OWNER_SLOTS;
    owners[i] = owner;
  }
  return { key, ids, points, owners };
}

/** Index of the first point >= h, wrapping to 0 past the end. */
function firstAtOrAfter(points: Uint32Array, h: number): number {
  let lo = 0;
  let hi = points.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((points[mid] as number) < h) lo = mid + 1;
    else hi = mid;
  }
  return lo === points.length ? 0 : lo;
}

/** FNV-1a over UTF-16 code units, finished with MurmurHash3's fmix32 for avalanche. Unsigned. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The consistent-hashing key of a request, or null when the policy has none or the value is absent. */
export function hashKeyOf(settings: LoadBalancerSettings | undefined, req: { path: string; headers: HeaderValues }, sourceKey?: string): string | null {
  const ch = settings?.consistentHash;
  if (!ch) return null;
  if (ch.httpHeaderName) return headerValue(req.headers, ch.httpHeaderName.toLowerCase()) ?? null;
  if (ch.httpQueryParameterName) return queryOf(req.path).get(ch.httpQueryParameterName) ?? null;
  if (ch.useSourceIp) return sourceKey ?? null;
  return null;
}
