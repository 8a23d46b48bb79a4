import assert from 'node:assert/strict';
import { test } from 'node:test';
import { matchesSelector } from '../src/mesh/labels.js';
import { effectivePolicy, findDestinationRule, type LabelledEndpoint, resolveDestination, subsetEndpoints } from '../src/mesh/subsets.js';
import type { DestinationRule } from '../src/mesh/types.js';

const endpoints: LabelledEndpoint[] = [
  { id: 'r1', labels: { version: 'v1', zone: 'a' } },
  { id: 'r2', labels: { version: 'v2', zone: 'a' } },
  { id: 'r3', labels: { version: 'v2', zone: 'b' } },
  { id: 'r4', labels: {} },
];

const rule: DestinationRule = {
  name: 'reviews',
  host: 'reviews',
  trafficPolicy: {
    loadBalancer: { simple: 'ROUND_ROBIN' },
    connectionPool: { maxConnections: 10, http1MaxPendingRequests: 5 },
    outlierDetection: { consecutive5xxErrors: 3, intervalMs: 1000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 50 },
    tls: { mode: 'ISTIO_MUTUAL' },
  },
  subsets: [
    { name: 'v1', labels: { version: 'v1' } },
    { name: 'v2', labels: { version: 'v2' }, trafficPolicy: { loadBalancer: { simple: 'RANDOM' }, connectionPool: { maxConnections: 1 } } },
    { name: 'v2-b', labels: { version: 'v2', zone: 'b' } },
  ],
};

test('a subset selects the endpoints carrying all of its labels (version from registry Meta)', () => {
  assert.deepEqual(
    subsetEndpoints(rule.subsets[0]!, endpoints).map((e) => e.id),
    ['r1'],
  );
  assert.deepEqual(
    subsetEndpoints(rule.subsets[1]!, endpoints).map((e) => e.id),
    ['r2', 'r3'],
  );
  assert.deepEqual(
    subsetEndpoints(rule.subsets[2]!, endpoints).map((e) => e.id),
    ['r3'],
  );
  assert.equal(matchesSelector(undefined, {}), true);
  assert.equal(matchesSelector({}, { a: 'b' }), true);
  assert.equal(matchesSelector({ toString: 'x' }, {}), false, 'inherited properties are not labels');
});

test('a subset-level policy field replaces the rule-level field as a whole; the rest is inherited', () => {
  const v2 = effectivePolicy(rule, 'v2');
  assert.deepEqual(v2.loadBalancer, { simple: 'RANDOM' });
  assert.deepEqual(v2.connectionPool, { maxConnections: 1 }, 'http1MaxPendingRequests is not merged in (Istio MergeTrafficPolicy)');
  assert.deepEqual(v2.outlierDetection, rule.trafficPolicy?.outlierDetection);
  assert.deepEqual(v2.tls, { mode: 'ISTIO_MUTUAL' });
  assert.deepEqual(effectivePolicy(rule, 'v1'), rule.trafficPolicy);
  assert.deepEqual(effectivePolicy(rule), rule.trafficPolicy);
  assert.deepEqual(effectivePolicy(undefined), {});
});

test('resolveDestination: no subset → all endpoints; known subset → filtered; unknown subset → error (503)', () => {
  const all = resolveDestination([rule], { host: 'reviews' }, endpoints);
  assert.ok(all.ok);
  assert.equal(all.endpoints.length, 4);
  const v2 = resolveDestination([rule], { host: 'reviews.default.svc.cluster.local', subset: 'v2' }, endpoints);
  assert.ok(v2.ok);
  assert.deepEqual(
    v2.endpoints.map((e) => e.id),
    ['r2', 'r3'],
  );
  assert.deepEqual(v2.policy.loadBalancer, { simple: 'RANDOM' });
  const bad = resolveDestination([rule], { host: 'reviews', subset: 'v9' }, endpoints);
  assert.equal(bad.ok, false);
  assert.match(bad.ok ? '' : bad.error, /has no subset "v9"/);
  const noRule = resolveDestination([], { host: 'ratings', subset: 'v1' }, endpoints);
  assert.equal(noRule.ok, false);
  const plain = resolveDestination([], { host: 'ratings' }, endpoints);
  assert.ok(plain.ok);
  assert.deepEqual(plain.policy, {});
});

test('findDestinationRule compares service names, first rule wins', () => {
  const other = { ...rule, name: 'second' };
  assert.equal(findDestinationRule([rule, other], 'reviews.default.svc.cluster.local')?.name, 'reviews');
  assert.equal(findDestinationRule([rule], 'ratings'), undefined);
});
