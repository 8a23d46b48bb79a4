/**
 * Traffic management on real processes, seen from a real caller (apps/mesh-probe, whose mesh
 * client runs on the pushed configuration): weighted and header-based routing, a YAML edit that
 * shifts traffic without a restart, fault injection percentages, faults composed with retries,
 * and connection-pool overflow. One system for the file: sample v1 + v2, and the probe.
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_TOPOLOGY, loadTopology, processesOf } from '@concord/cli';
import { type System, outputDir, pollUntil, startSystem } from './harness.js';
import { applyAndWait, assertWithin, deleteResource, probe, servedSince, setMode, share, versionOf } from './mesh-helpers.js';

const PROBE = 'probe-1';
const CALLS = 2000;

const DR = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: sample}
spec:
  host: sample
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`;

/** jason → v2; everyone else split v1/v2 by weight. */
const canary = (v1: number, v2: number) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: sample}
spec:
  hosts: [sample]
  http:
  - match:
    - headers:
        end-user: {exact: jason}
    route:
    - destination: {host: sample, subset: v2}
  - route:
    - destination: {host: sample, subset: v1}
      weight: ${v1}
    - destination: {host: sample, subset: v2}
      weight: ${v2}
`;

describe('mesh routing, faults and pools', () => {
  let sys: System;
  const meshDir = join(outputDir('mesh-routing'), 'mesh');

  before(async () => {
    rmSync(meshDir, { recursive: true, force: true });
    mkdirSync(meshDir, { recursive: true });
    sys = await startSystem({
      name: 'mesh-routing',
      topology: 'services:\n  - name: sample\n    instances: 2\n    versions: [v1, v2]\n  - name: probe\n    app: mesh-probe\n',
      env: { CONCORD_MESH_CONFIG_DIR: meshDir, CONCORD_LOG_LEVEL: 'warn' },
    });
  });
  after(() => sys?.stop());

  test('the default topology runs recommendation in two versions, v1 and v2', () => {
    const recs = processesOf(loadTopology(DEFAULT_TOPOLOGY)).filter((p) => p.service === 'recommendation');
    assert.deepEqual(
      recs.map((p) => p.version),
      ['v1', 'v2'],
    );
  });

  test('VirtualService 90/10: 2,000 calls land within ±3 % of the weights; end-user: jason always reaches v2', async () => {
    await applyAndWait(sys, `${DR}---\n${canary(90, 10)}`, [PROBE]);
    const all = await probe(sys, PROBE, { service: 'sample', path: '/api/sample/hello', count: CALLS, concurrency: 16 });
    assert.equal(all.summary.byStatus['200'], CALLS, JSON.stringify(all.summary));
    assertWithin(
      share(all.results, (r) => versionOf(r) === 'v2'),
      0.1,
      0.03,
      'share of v2',
    );
    const jason = await probe(sys, PROBE, { service: 'sample', path: '/api/sample/hello', headers: { 'end-user': 'jason' }, count: 200, concurrency: 8 });
    assert.equal(
      share(jason.results, (r) => versionOf(r) === 'v2'),
      1,
      JSON.stringify(jason.summary),
    );
    const alice = await probe(sys, PROBE, { service: 'sample', path: '/api/sample/hello', headers: { 'end-user': 'alice' }, count: 400, concurrency: 8 });
    assert.ok(share(alice.results, (r) => versionOf(r) === 'v1') > 0.8, `another user follows the weights: ${JSON.stringify(alice.summary)}`);
  });

  test('editing the YAML file shifts traffic within 1 s, with no restart', async () => {
    const pids = ['sample-1', 'sample-2', PROBE].map((id) => sys.sup.children.get(id)?.pid);
    const file = join(meshDir, 'sample.yaml');
    // Time from the write until a whole batch of calls follows the new routing.
    const shift = async (yaml: string, follows: (version: string | null) => boolean, what: string) => {
      const t0 = Date.now();
      writeFileSync(file, yaml);
      await pollUntil(
        what,
        async () => {
          const batch = await probe(sys, PROBE, { service: 'sample', path: '/api/sample/hello', count: 20, concurrency: 4 });
          return batch.results.every((r) => r.status === 200 && follows(versionOf(r)));
        },
        5000,
        10,
      );
      return Date.now() - t0;
    };
    const toV2 = await shift(`${DR}---\n${canary(0, 100)}`, (v) => v === 'v2', 'every call on v2');
    assert.ok(toV2 < 1000, `traffic moved to v2 ${toV2} ms after the edit`);
    const toV1 = await shift(`${DR}---\n${canary(100, 0)}`, (v) => v === 'v1', 'every call on v1');
    assert.ok(toV1 < 1000, `traffic moved back to v1 ${toV1} ms after the edit`);

    // "end-user: jason → v2, everyone else v1"
    const others = await probe(sys, PROBE, { service: 'sample', path: '/api/sample/hello', count: 200, concurrency: 8 });
    assert.equal(
      share(others.results, (r) => versionOf(r) === 'v1'),
      1,
      JSON.stringify(others.summary),
    );
    const jason = await probe(sys, PROBE, { service: 'sample', path: '/api/sample/hello', headers: { 'end-user': 'jason' }, count: 100, concurrency: 8 });
    assert.equal(
      share(jason.results, (r) => versionOf(r) === 'v2'),
      1,
      JSON.stringify(jason.summary),
    );

    assert.deepEqual(
      ['sample-1', 'sample-2', PROBE].map((id) => sys.sup.children.get(id)?.pid),
      pids,
      'no process was restarted',
    );
    rmSync(file);
    await pollUntil('the removed file pruned', async () => {
      const batch = await probe(sys, PROBE, { service: 'sample', path: '/api/sample/hello', headers: { 'end-user': 'jason' }, count: 40, concurrency: 4 });
      return batch.results.some((r) => versionOf(r) === 'v1');
    });
  });

  test('fault injection: delay and abort percentages land within ±3 % over 2,000 calls; an aborted call never reaches an instance', async () => {
    await setMode(sys, 'sample-1', 'ok');
    await setMode(sys, 'sample-2', 'ok');
    await applyAndWait(
      sys,
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: sample}
spec:
  hosts: [sample]
  http:
  - fault:
      delay: {fixedDelay: 20ms, percentage: {value: 30}}
      abort: {httpStatus: 418, percentage: {value: 20}}
    route:
    - destination: {host: sample}
`,
      [PROBE],
    );
    const r = await probe(sys, PROBE, { service: 'sample', path: '/api/sample/hello', count: CALLS, concurrency: 64 });
    const delayed = r.results.filter((x) => x.flags.split(',').includes('DI'));
    const aborted = r.results.filter((x) => x.flags.split(',').includes('FI'));
    assertWithin(delayed.length / CALLS, 0.3, 0.03, 'share delayed');
    assertWithin(aborted.length / CALLS, 0.2, 0.03, 'share aborted');
    assert.ok(
      delayed.every((x) => x.durationMs >= 19),
      'a delayed call takes at least the delay',
    );
    assert.ok(
      aborted.every((x) => x.status === 418 && x.servedBy === null && x.attempts === 1),
      'an aborted call answers the fault status, from no instance, and is not retried without a retry policy',
    );
    assert.equal(r.summary.byStatus['200'], CALLS - aborted.length);
    const reached = (await servedSince(sys, 'sample-1')) + (await servedSince(sys, 'sample-2'));
    assert.equal(reached, CALLS - aborted.length, 'only calls that were not aborted reached an instance');
  });

  test('faults and retries compose: a 50 % abort with attempts: 3 rolls again on every try, so 1 − 0.5⁴ = 93.75 % succeed', async () => {
    await applyAndWait(
      sys,
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: sample}
spec:
  hosts: [sample]
  http:
  - fault:
      abort: {httpStatus: 503, percentage: {value: 50}}
    retries: {attempts: 3, retryOn: 5xx}
    route:
    - destination: {host: sample}
`,
      [PROBE],
    );
    const r = await probe(sys, PROBE, { service: 'sample', path: '/api/sample/hello', count: CALLS, concurrency: 64 });
    const ok = share(r.results, (x) => x.status === 200);
    assertWithin(ok, 0.9375, 0.03, 'share succeeded');
    const meanAttempts = r.results.reduce((a, x) => a + x.attempts, 0) / CALLS;
    assert.ok(Math.abs(meanAttempts - 1.875) < 0.1, `mean tries ${meanAttempts.toFixed(3)} (expected 1 + 0.5 + 0.25 + 0.125 = 1.875)`);
    assert.ok(
      r.results.every((x) => x.attempts >= 1 && x.attempts <= 4),
      'never more than 1 + 3 tries',
    );
    assert.ok(
      r.results.filter((x) => x.status !== 200).every((x) => x.status === 503 && x.attempts === 4 && x.flags.includes('FI')),
      'a call fails only when all four tries were aborted',
    );
  });

  test('connection-pool overflow answers 503 at once instead of queueing', async () => {
    await deleteResource(sys, 'VirtualService', 'sample');
    // One connection per endpoint and one request waiting, destination-wide: of 12 concurrent
    // slow calls to two endpoints, 2 run, 1 waits, 9 overflow.
    await applyAndWait(
      sys,
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: sample}
spec:
  host: sample
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1}
`,
      [PROBE],
    );
    const slowMs = 400;
    const r = await probe(sys, PROBE, { service: 'sample', path: `/api/sample/slow?ms=${slowMs}`, count: 12, concurrency: 12 });
    const overflow = r.results.filter((x) => x.error === 'overflow');
    const served = r.results.filter((x) => x.status === 200);
    assert.equal(overflow.length, 9, JSON.stringify(r.results));
    assert.equal(served.length, 3, JSON.stringify(r.results));
    for (const x of overflow) {
      assert.equal(x.status, 503);
      assert.equal(x.flags, 'UO');
      assert.equal(x.attempts, 1, 'an overflow is not retried');
      assert.ok(x.durationMs < 100, `an overflow is answered at once, not after queueing (${x.durationMs.toFixed(1)} ms)`);
    }
    const waited = served.filter((x) => x.durationMs >= 2 * slowMs - 20);
    assert.equal(waited.length, 1, `exactly one call waited for a connection: ${served.map((x) => x.durationMs.toFixed(0)).join(', ')} ms`);
  });
});
