/**
 * The applied configuration: all-or-nothing changes, versions, status of every submitted
 * resource, deletes that would break references, directory ownership, snapshots.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseStream } from '../src/mesh-config/parse.js';
import { MeshConfigFile } from '../src/mesh-config/persist.js';
import { type ApplyResult, MeshConfigStore, type Submission } from '../src/mesh-config/store.js';

const KNOWN = new Set(['recommendation', 'order', 'payment']);

const DR = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: recommendation}
spec:
  host: recommendation
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`;

const vs = (v1: number, v2: number) => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: recommendation}
spec:
  hosts: [recommendation]
  http:
  - route:
    - destination: {host: recommendation, subset: v1}
      weight: ${v1}
    - destination: {host: recommendation, subset: v2}
      weight: ${v2}
`;

const PA = `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default}
spec: {mtls: {mode: STRICT}}
`;

function sub(yaml: string, source = 'api', prune?: Submission['prune']): Submission {
  const p = parseStream(yaml, source);
  return { source, documents: p.documents, streamErrors: p.ok ? [] : p.errors, prune };
}

function applyOk(store: MeshConfigStore, yaml: string, nowMs = 1000): Extract<ApplyResult, { ok: true }> {
  const r = store.apply(sub(yaml), KNOWN, nowMs);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
  return r as Extract<ApplyResult, { ok: true }>;
}

test('a valid change applies at version 1; applying it again changes nothing', () => {
  const store = new MeshConfigStore();
  const r = applyOk(store, `${DR}---${vs(90, 10)}`);
  assert.equal(r.version, 1);
  assert.deepEqual(
    r.applied.map((a) => `${a.kind}/${a.name} ${a.action}`),
    ['DestinationRule/recommendation created', 'VirtualService/recommendation created'],
  );
  assert.equal(store.config.version, 1);
  assert.equal(store.config.virtualServices[0]!.http[0]!.route[1]!.weight, 10);
  const again = applyOk(store, `${DR}---${vs(90, 10)}`);
  assert.equal(again.version, 1);
  assert.equal(again.changed, false);
  assert.deepEqual(
    again.applied.map((a) => a.action),
    ['unchanged', 'unchanged'],
  );
  assert.deepEqual(
    store.status().map((s) => [s.kind, s.state, s.version]),
    [
      ['VirtualService', 'applied', 1],
      ['DestinationRule', 'applied', 1],
    ],
  );
});

test('a change replaces resources of the same kind and name; the others stay', () => {
  const store = new MeshConfigStore();
  applyOk(store, `${DR}---${vs(90, 10)}`);
  const r = applyOk(store, vs(50, 50));
  assert.equal(r.version, 2);
  assert.deepEqual(
    r.applied.map((a) => a.action),
    ['configured'],
  );
  assert.equal(store.config.destinationRules.length, 1);
  assert.deepEqual(
    store.config.virtualServices[0]!.http[0]!.route.map((d) => d.weight),
    [50, 50],
  );
  const st = store.status().find((s) => s.kind === 'DestinationRule');
  assert.equal(st?.version, 1, 'the DestinationRule was applied at version 1 and not touched since');
});

test('one bad resource: nothing is applied, every submitted resource is recorded as rejected', () => {
  const store = new MeshConfigStore();
  applyOk(store, `${DR}---${vs(90, 10)}`);
  const before = JSON.stringify(store.config);
  const r = store.apply(sub(`${vs(50, -50)}---${PA}`), KNOWN, 2000);
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.equal(r.version, 1);
  assert.deepEqual(
    r.errors.map((e) => e.path),
    ['VirtualService/recommendation: spec.http[0].route[1].weight'],
  );
  assert.equal(r.errors[0]!.line, 12);
  assert.equal(JSON.stringify(store.config), before, 'the last good configuration stays in force');
  const vsStatus = store.status().find((s) => s.kind === 'VirtualService')!;
  assert.equal(vsStatus.state, 'rejected');
  assert.match(vsStatus.reason ?? '', /spec\.http\[0\]\.route\[1\]\.weight: must not be negative/);
  assert.equal(vsStatus.inForceVersion, 1, 'the previous copy is still in force');
  const paStatus = store.status().find((s) => s.kind === 'PeerAuthentication')!;
  assert.equal(paStatus.state, 'rejected');
  assert.match(paStatus.reason ?? '', /^not applied: the change it came with was rejected/);
  assert.equal(store.config.peerAuthentications.length, 0);
});

test('a change that breaks a resource in force is refused, naming that resource', () => {
  const store = new MeshConfigStore();
  applyOk(store, `${DR}---${vs(90, 10)}`);
  const r = store.apply(sub(DR.replace('  - {name: v2, labels: {version: v2}}\n', '')), KNOWN, 2000);
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.deepEqual(
    r.errors.map((e) => e.path),
    ['VirtualService/recommendation: spec.http[0].route[1].destination.subset'],
  );
  assert.match(r.rejected[0]!.reason, /not applied/);
  assert.equal(store.version, 1);
});

test('YAML syntax errors reject the whole stream and are attributed to their document', () => {
  const store = new MeshConfigStore();
  const r = store.apply(sub(`${PA}---\nkind: VirtualService\nmetadata: {name: x\n`), KNOWN, 1000);
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.equal(r.errors[0]!.resource, 'VirtualService/x', 'the kind and name could still be read');
  assert.equal(r.errors[0]!.path, 'VirtualService/x (document 2)');
  assert.ok(r.errors[0]!.line);
  assert.equal(store.version, 0);
  assert.equal(store.status()[0]?.state, 'rejected');
});

test('the same kind and name twice in one change is refused', () => {
  const store = new MeshConfigStore();
  const r = store.apply(sub(`${PA}---${PA}`), KNOWN, 1000);
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.deepEqual(
    r.errors.map((e) => e.path),
    ['PeerAuthentication/default: metadata.name'],
  );
});

test('delete: 404 when absent, 409 when referenced, else a new version', () => {
  const store = new MeshConfigStore();
  applyOk(store, `${DR}---${vs(90, 10)}`);
  assert.deepEqual(store.remove('PeerAuthentication', 'nope'), {
    ok: false,
    status: 404,
    detail: 'PeerAuthentication/nope is not in the applied configuration',
    errors: [],
  });
  const conflict = store.remove('DestinationRule', 'recommendation');
  assert.equal(conflict.ok, false);
  if (conflict.ok) return;
  assert.equal(conflict.status, 409);
  assert.deepEqual([...new Set(conflict.errors.map((e) => e.resource))], ['VirtualService/recommendation']);
  assert.equal(store.version, 1);
  assert.deepEqual(store.remove('VirtualService', 'recommendation'), { ok: true, version: 2 });
  assert.deepEqual(store.remove('DestinationRule', 'recommendation'), { ok: true, version: 3 });
  assert.deepEqual(store.config, { version: 3, virtualServices: [], destinationRules: [], peerAuthentications: [], authorizationPolicies: [], telemetries: [] });
  assert.deepEqual(store.status(), []);
});

test('a configuration directory owns its resources: those no longer in it are deleted', () => {
  const store = new MeshConfigStore();
  applyOk(store, PA); // from the API: not the directory's
  const owned = (r: { source: string }) => r.source.startsWith('file:');
  let r = store.apply(sub(`${DR}---${vs(90, 10)}`, 'file:/mesh/canary.yaml', owned), KNOWN, 2000);
  assert.ok(r.ok);
  assert.equal(store.applied().length, 3);
  r = store.apply(sub(DR, 'file:/mesh/canary.yaml', owned), KNOWN, 3000);
  assert.ok(r.ok);
  if (!r.ok) return;
  assert.deepEqual(r.deleted, [{ kind: 'VirtualService', name: 'recommendation' }]);
  assert.deepEqual(
    store.applied().map((x) => `${x.kind}/${x.name} ${x.source}`),
    ['DestinationRule/recommendation file:/mesh/canary.yaml', 'PeerAuthentication/default api'],
  );
});

test('host checks apply to what changed: a resource in force is not refused because its service went away', () => {
  const store = new MeshConfigStore();
  applyOk(store, `${DR}---${vs(90, 10)}`);
  const r = store.apply(sub(PA), new Set(['order']), 2000);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
});

test('snapshots round-trip through the file, and the restored configuration is the same', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-store-'));
  try {
    const store = new MeshConfigStore();
    applyOk(store, `${DR}---${vs(90, 10)}---${PA}`);
    store.apply(sub(vs(1, -1)), KNOWN, 2000);
    store.ack('recommendation-1', 1, undefined, 3000);
    const file = new MeshConfigFile(dir);
    file.save(store.snapshot());
    const restored = new MeshConfigStore();
    assert.deepEqual(restored.restore(file.load()!), []);
    assert.deepEqual(restored.config, store.config);
    assert.deepEqual(restored.status(), store.status());
    assert.deepEqual(restored.ackList(), [{ instanceId: 'recommendation-1', version: 1, ackedAt: new Date(3000).toISOString() }]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('acks are bounded and keep the latest per instance', () => {
  const store = new MeshConfigStore();
  store.ack('a', 1, undefined, 1);
  store.ack('a', 2, 'refused: no subset v3', 2);
  assert.deepEqual(store.ackList(), [{ instanceId: 'a', version: 2, error: 'refused: no subset v3', ackedAt: new Date(2).toISOString() }]);
  for (let i = 0; i < 10_050; i++) store.ack(`i-${i}`, 1, undefined, 3);
  assert.equal(store.ackList().length, 10_000);
});

test('documents without a usable kind or name are listed as rejected until their source is fixed', () => {
  const store = new MeshConfigStore();
  const owned = (r: { source: string }) => r.source.startsWith('file:');
  const bad = store.apply(sub(`${PA}---\nkind: VirtualServise\nmetadata: {name: typo}\nspec: {}\n`, 'file:/mesh/a.yaml', owned), KNOWN, 1000);
  assert.equal(bad.ok, false);
  assert.deepEqual(
    store.status().map((s) => [s.kind, s.name, s.state, s.source]),
    [
      ['VirtualServise', 'typo', 'rejected', 'file:/mesh/a.yaml'],
      ['PeerAuthentication', 'default', 'rejected', 'file:/mesh/a.yaml'],
    ],
  );
  assert.match(store.status()[0]!.reason ?? '', /kind: unknown kind "VirtualServise"/);
  const snap = store.snapshot();
  const restored = new MeshConfigStore();
  restored.restore(snap);
  assert.deepEqual(restored.status(), store.status());
  assert.ok(store.apply(sub(PA, 'file:/mesh/a.yaml', owned), KNOWN, 2000).ok);
  assert.deepEqual(store.status().map((s) => [s.kind, s.state]), [['PeerAuthentication', 'applied']]);
});
