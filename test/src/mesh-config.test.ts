/**
 * Mesh configuration in the control plane, on real processes: Istio YAML applied through the
 * API, the CLI and a watched directory; invalid YAML refused with every field path and nothing
 * half-applied; changes pushed to watching data planes within a second; acks; persistence
 * across a control-plane crash.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT } from '@concord/cli';
import { type System, http, outputDir, pollUntil, startSystem } from './harness.js';

const DR = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: recommendation
spec:
  host: recommendation
  trafficPolicy:
    outlierDetection:
      consecutive5xxErrors: 3
      interval: 1s
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
`;

const vs = (v1: number, v2: number, extra = '') => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: recommendation
spec:
  hosts:
  - recommendation
  http:
  - match:
    - headers:
        end-user: {exact: jason}
    route:
    - destination: {host: recommendation, subset: v2}
  - route:
    - destination: {host: recommendation, subset: v1}
      weight: ${v1}
    - destination: {host: recommendation, subset: v2}
      weight: ${v2}${extra}
`;

/** Every kind of mistake the issue lists, in one stream: a bad duration, a negative weight, an undefined subset, an unknown host, an unknown and an unsupported field. */
const BAD = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: recommendation
spec:
  hosts: [recommendation]
  http:
  - route:
    - destination: {host: recommendation, subset: v1}
      weight: 90
    - destination: {host: recommendation, subset: v3}
      weight: -10
    timeout: 10 seconds
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ghost
spec:
  hosts: [ghost]
  gateways: [public-gateway]
  http:
  - route:
    - destination: {host: ghost}
    retry: {attempts: 3}
`;

/** The remaining kinds of mistakes: connection pool, outlier detection, header match, fault, retries, mTLS mode, principals. */
const BAD_POLICIES = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: recommendation
spec:
  host: recommendation
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: -1}
      http: {http1MaxPendingRequests: 0.5}
    outlierDetection:
      consecutive5xxErrors: -3
      baseEjectionTime: soon
      maxEjectionPercent: 150
  subsets:
  - {name: v1, labels: {version: v1}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: recommendation
spec:
  hosts: [recommendation]
  http:
  - match:
    - headers:
        end-user: {exact: jason, prefix: ja}
    fault:
      delay: {fixedDelay: 5s, percentage: {value: 120}}
      abort: {httpStatus: 700, percentage: {value: 10}}
    retries: {attempts: -1}
    route:
    - destination: {host: recommendation, subset: v1}
  - retries: {attempts: 2, perTryTimeout: 0s}
    route:
    - destination: {host: recommendation, subset: v1}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: strict
spec:
  mtls: {mode: SOMETIMES}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: only-order
spec:
  selector: {matchLabels: {app: recommendation}}
  action: ALLOW
  rules:
  - from:
    - source: {principals: [order, cluster.local/ns/default/sa/nobody]}
`;

// biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field
type Json = Record<string, any>;

const yamlPost = (url: string, body: string, headers: Record<string, string> = {}) =>
  http(`${url}/api/config`, { method: 'POST', headers: { 'content-type': 'application/yaml', ...headers }, body });

function cli(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [join(ROOT, 'cli/dist/src/main.js'), ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 20_000);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

describe('mesh configuration', () => {
  let sys: System;
  let url: string;
  const dir = outputDir('mesh-config');
  const meshDir = join(dir, 'mesh');
  const files = join(dir, 'files');

  before(async () => {
    rmSync(meshDir, { recursive: true, force: true });
    mkdirSync(meshDir, { recursive: true });
    mkdirSync(files, { recursive: true });
    sys = await startSystem({
      name: 'mesh-config',
      topology: 'services:\n  - name: recommendation\n    instances: 2\n    versions: [v1, v2]\n',
      env: { CONCORD_MESH_CONFIG_DIR: meshDir, CONCORD_CHECK_INTERVAL: '300ms', CONCORD_CHECK_TIMEOUT: '300ms' },
    });
    url = sys.controlUrl;
  });
  after(() => sys?.stop());

  const current = async () => (await http<Json>(`${url}/api/config`)).body;

  test('a valid stream is applied at a new version and GET shows it, as submitted and normalised', async () => {
    const before = (await current()).version as number;
    const r = await yamlPost(url, `${DR}---\n${vs(90, 10)}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.version, before + 1);
    assert.equal(r.headers.get('x-concord-config-version'), String(before + 1));
    assert.deepEqual(
      r.body.applied.map((a: Json) => `${a.kind}/${a.name} ${a.action}`),
      ['DestinationRule/recommendation created', 'VirtualService/recommendation created'],
    );
    const c = await current();
    assert.equal(c.version, before + 1);
    assert.deepEqual(
      c.resources.map((d: Json) => `${d.kind}/${d.metadata.name}`),
      ['VirtualService/recommendation', 'DestinationRule/recommendation'],
    );
    assert.deepEqual(
      c.resources[0].spec.http[1].route[1],
      { destination: { host: 'recommendation', subset: 'v2' }, weight: 10 },
      'resources are kept as submitted',
    );
    assert.deepEqual(
      c.config.virtualServices[0].http[1].route.map((d: Json) => d.weight),
      [90, 10],
    );
    assert.equal(c.config.destinationRules[0].trafficPolicy.outlierDetection.intervalMs, 1000);
    assert.ok(c.status.every((s: Json) => s.state === 'applied' && s.source === 'api'));
  });

  test('a stream with bad resources is refused with every field path, and nothing changes', async () => {
    const before = await current();
    const r = await yamlPost(url, BAD);
    assert.equal(r.status, 400);
    assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.match(r.body.detail, /nothing was applied/);
    assert.deepEqual(r.body.errors.map((e: Json) => e.path).sort(), [
      'VirtualService/ghost: spec.gateways',
      'VirtualService/ghost: spec.hosts[0]',
      'VirtualService/ghost: spec.http[0].retry',
      'VirtualService/ghost: spec.http[0].route[0].destination.host',
      'VirtualService/recommendation: spec.http[0].route[1].destination.subset',
      'VirtualService/recommendation: spec.http[0].route[1].weight',
      'VirtualService/recommendation: spec.http[0].timeout',
    ]);
    const weight = r.body.errors.find((e: Json) => e.field === 'spec.http[0].route[1].weight');
    assert.equal(weight.line, 12);
    assert.match(weight.message, /negative/);
    const after = await current();
    assert.equal(after.version, before.version, 'the version stays');
    assert.deepEqual(after.config, before.config, 'the last good configuration stays in force');
    assert.deepEqual(after.resources, before.resources);
    const status = (await http<Json>(`${url}/api/config/status`)).body;
    const rec = status.resources.find((s: Json) => s.kind === 'VirtualService' && s.name === 'recommendation');
    assert.equal(rec.state, 'rejected');
    assert.equal(rec.inForceVersion, before.version);
    assert.match(rec.reason, /spec\.http\[0\]\.route\[1\]\.weight/);
    assert.equal(status.resources.find((s: Json) => s.name === 'ghost').state, 'rejected');
  });

  test('every other kind of mistake in the acceptance list is refused with its field path, and nothing changes', async () => {
    const before = await current();
    const r = await yamlPost(url, BAD_POLICIES);
    assert.equal(r.status, 400, r.text);
    assert.match(r.body.detail, /nothing was applied/);
    assert.deepEqual(r.body.errors.map((e: Json) => e.path).sort(), [
      'AuthorizationPolicy/only-order: spec.rules[0].from[0].source.principals[0]',
      'AuthorizationPolicy/only-order: spec.rules[0].from[0].source.principals[1]',
      'DestinationRule/recommendation: spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests',
      'DestinationRule/recommendation: spec.trafficPolicy.connectionPool.tcp.maxConnections',
      'DestinationRule/recommendation: spec.trafficPolicy.outlierDetection.baseEjectionTime',
      'DestinationRule/recommendation: spec.trafficPolicy.outlierDetection.consecutive5xxErrors',
      'DestinationRule/recommendation: spec.trafficPolicy.outlierDetection.maxEjectionPercent',
      'PeerAuthentication/strict: spec.mtls.mode',
      'VirtualService/recommendation: spec.http[0].fault.abort.httpStatus',
      'VirtualService/recommendation: spec.http[0].fault.delay.percentage.value',
      'VirtualService/recommendation: spec.http[0].match[0].headers[end-user]',
      'VirtualService/recommendation: spec.http[0].retries.attempts',
      'VirtualService/recommendation: spec.http[1].retries.perTryTimeout',
    ]);
    for (const e of r.body.errors as Json[]) assert.ok(e.line >= 1 && typeof e.message === 'string' && e.message.length > 0, JSON.stringify(e));
    const after = await current();
    assert.equal(after.version, before.version, 'the version stays');
    assert.deepEqual(after.config, before.config, 'nothing was half-applied');
  });

  test('YAML syntax errors come back with line and column; other bodies are accepted as {yaml} or refused', async () => {
    const syntax = await yamlPost(url, 'kind: VirtualService\nmetadata: {name: x\n---\n[unclosed\n');
    assert.equal(syntax.status, 400);
    assert.equal(syntax.body.errors[0].path, 'VirtualService/x (document 1)');
    assert.equal(syntax.body.errors.at(-1).path, 'document 2');
    assert.ok(syntax.body.errors[0].line >= 1 && syntax.body.errors[0].col >= 1, JSON.stringify(syntax.body.errors));
    const json = await http(`${url}/api/config`, { method: 'POST', json: { yaml: `${DR}---\n${vs(90, 10)}` } });
    assert.equal(json.status, 200, json.text);
    assert.equal(json.body.changed, false, 'the same resources again change nothing');
    const text = await http(`${url}/api/config`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: DR });
    assert.equal(text.status, 415);
    const wrong = await http(`${url}/api/config`, { method: 'POST', json: { yml: DR } });
    assert.equal(wrong.status, 400);
  });

  test('a watching data plane gets a change within a second, and acks are listed per instance', async () => {
    const { version } = await current();
    const start = Date.now();
    const immediate = await http<Json>(`${url}/api/config/watch?version=${version - 1}&wait=10s`);
    assert.equal(immediate.body.version, version);
    assert.ok(Date.now() - start < 1000, 'an out-of-date watcher is answered at once');

    const watch = http<Json>(`${url}/api/config/watch?version=${version}&wait=20s`);
    await new Promise((r) => setTimeout(r, 100)); // let the watch reach the server first
    const post = await yamlPost(url, vs(50, 50));
    assert.equal(post.status, 200);
    const changedAt = Date.now();
    const w = await watch;
    assert.ok(Date.now() - changedAt < 1000, `the watch returned ${Date.now() - changedAt} ms after the change`);
    assert.equal(w.body.version, version + 1);
    assert.equal(w.headers.get('x-concord-config-version'), String(version + 1));
    assert.deepEqual(
      w.body.config.virtualServices[0].http[1].route.map((d: Json) => d.weight),
      [50, 50],
    );

    const ack = await http(`${url}/api/config/ack`, { method: 'PUT', json: { instanceId: 'dp-test-1', version: version + 1 } });
    assert.equal(ack.status, 204);
    const refused = await http(`${url}/api/config/ack`, { method: 'PUT', json: { instanceId: 'dp-test-2', version, error: 'no endpoints for subset v2' } });
    assert.equal(refused.status, 204);
    const badAck = await http(`${url}/api/config/ack`, { method: 'PUT', json: { instanceId: 'dp test', version: -1 } });
    assert.equal(badAck.status, 400);
    const status = (await http<Json>(`${url}/api/config/status`)).body;
    assert.equal(status.version, version + 1);
    const dp1 = status.instances.find((i: Json) => i.instanceId === 'dp-test-1');
    const dp2 = status.instances.find((i: Json) => i.instanceId === 'dp-test-2');
    assert.deepEqual([dp1.version, dp1.current], [version + 1, true]);
    assert.deepEqual([dp2.version, dp2.current, dp2.error], [version, false, 'no endpoints for subset v2']);
  });

  test('delete: 409 while referenced, 404 when absent, else a new version', async () => {
    const { version } = await current();
    const conflict = await http(`${url}/api/config/DestinationRule/recommendation`, { method: 'DELETE' });
    assert.equal(conflict.status, 409);
    assert.match(conflict.body.detail, /VirtualService\/recommendation/);
    assert.equal((await current()).version, version);
    assert.equal((await http(`${url}/api/config/vs/nothing`, { method: 'DELETE' })).status, 404);
    assert.equal((await http(`${url}/api/config/Gateway/x`, { method: 'DELETE' })).status, 400);
    const del = await http(`${url}/api/config/vs/recommendation`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    assert.deepEqual(del.body, { version: version + 1, deleted: { kind: 'VirtualService', name: 'recommendation' } });
    assert.equal((await current()).config.virtualServices.length, 0);
  });

  test('the configuration directory: an edit applies within a second; a bad edit is rejected and the last good stays', async () => {
    const file = join(meshDir, 'canary.yaml');
    const { version } = await current();
    let t0 = Date.now();
    writeFileSync(file, `# canary\n${vs(80, 20)}`);
    const applied = await pollUntil('the file applied', async () => {
      const c = await current();
      return c.version > version && c.config.virtualServices[0]?.http[1].route[0].weight === 80 ? c : null;
    });
    assert.ok(Date.now() - t0 < 1000, `applied ${Date.now() - t0} ms after the write`);
    const st = applied.status.find((s: Json) => s.kind === 'VirtualService' && s.name === 'recommendation');
    assert.equal(st.source, `file:${file}`);

    t0 = Date.now();
    writeFileSync(file, `# canary\n${vs(70, 30)}`);
    await pollUntil('the edit applied', async () => (await current()).config.virtualServices[0]?.http[1].route[0].weight === 70);
    assert.ok(Date.now() - t0 < 1000, `edit applied ${Date.now() - t0} ms after the write`);
    const good = await current();

    writeFileSync(file, `# canary\n${vs(70, 30, '\n    timeout: 0s')}`);
    const rejected = await pollUntil('the bad edit rejected', async () => {
      const s = (await http<Json>(`${url}/api/config/status`)).body;
      const r = s.resources.find((x: Json) => x.kind === 'VirtualService' && x.name === 'recommendation');
      return r?.state === 'rejected' ? r : null;
    });
    assert.match(rejected.reason, /spec\.http\[1\]\.timeout/);
    assert.equal(rejected.source, `file:${file}`);
    const after = await current();
    assert.equal(after.version, good.version);
    assert.deepEqual(after.config, good.config);

    rmSync(file);
    await pollUntil('the removed file pruned', async () => (await current()).config.virtualServices.length === 0);
  });

  test('concord apply -f and concord config status', async () => {
    const env = { CONCORD_CONTROL_URL: url };
    const good = join(files, 'good.yaml');
    writeFileSync(good, `${DR}---\n${vs(90, 10)}`);
    const ok = await cli(['apply', '-f', good], env);
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /VirtualService\/recommendation created/);
    assert.match(ok.out, /configuration version \d+/);

    const bad = join(files, 'bad.yaml');
    writeFileSync(bad, BAD);
    const no = await cli(['apply', '-f', bad], env);
    assert.equal(no.code, 1);
    assert.match(no.err, /nothing was applied/);
    assert.match(no.out, /VirtualService\/recommendation rejected/);
    assert.match(no.out, /spec\.http\[0\]\.route\[1\]\.weight \(line 12, column \d+\): must not be negative/);
    assert.match(no.out, /VirtualService\/ghost rejected/);
    assert.match(no.out, /spec\.gateways \(line \d+, column \d+\): is not supported by Concord/);

    const status = await cli(['config', 'status'], env);
    assert.equal(status.code, 0, status.err);
    assert.match(status.out, /KIND\s+NAME\s+STATE\s+VERSION\s+SOURCE\s+REASON/);
    assert.match(status.out, /DestinationRule\s+recommendation\s+applied\s+\d+\s+cli/);
    assert.match(status.out, /VirtualService\s+recommendation\s+rejected \(previous in force\)\s+\d+\s+cli\s+spec\.http\[0\]/);
    assert.match(status.out, /INSTANCE\s+SERVICE\s+ACKED VERSION/);
    assert.match(status.out, /dp-test-1/);

    const usage = await cli(['apply'], env);
    assert.equal(usage.code, 2);
  });

  test('the applied configuration survives a control-plane crash', async () => {
    const before = await current();
    const pid = sys.sup.signal('control-plane-1', 'SIGKILL');
    await sys.sup.waitRestarted('control-plane-1', pid, 10_000);
    const after = await pollUntil('the control plane answering', async () => (await http<Json>(`${url}/api/config`)).body);
    assert.equal(after.version, before.version);
    assert.deepEqual(after.resources, before.resources);
    assert.deepEqual(after.config, before.config);
    assert.deepEqual(after.status, before.status);
  });
});
