/**
 * The supervisor, service kit and registry client together, on real processes.
 */
import assert from 'node:assert/strict';
import { fork, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT, appEntry, collectStatus, renderStatus } from '@concord/cli';
import { RegistryClient, createLogger } from '@concord/platform';
import { type System, http, instances, outputDir, pollUntil, serviceUrl, startSystem } from './harness.js';

const FAST_CHECKS = { CONCORD_CHECK_INTERVAL: '300ms', CONCORD_CHECK_TIMEOUT: '300ms' };
const quietLog = createLogger({ service: 'test', instance: 'test', version: 'v1' }, 'silent');

describe('a running system', () => {
  let sys: System;
  let deleteRegistryOnRestart = false;

  before(async () => {
    sys = await startSystem({
      name: 'system',
      topology: 'services:\n  - name: sample\n    instances: 2\n',
      env: FAST_CHECKS,
      beforeRestart: (spec) => {
        if (spec.service === 'control-plane' && deleteRegistryOnRestart) rmSync(join(sys.dataDir, 'control-plane', 'registry.json'), { force: true });
      },
    });
  });
  after(() => sys?.stop());

  test('every instance is registered and passing at the ready line; status shows uptime and memory', async () => {
    const rows = await collectStatus(sys.controlUrl);
    assert.deepEqual(rows.map((r) => r.id).sort(), ['control-plane-1', 'sample-1', 'sample-2']);
    for (const r of rows) {
      assert.equal(r.status, 'passing', r.id);
      assert.ok((r.rssBytes ?? 0) > 1_000_000, `${r.id} reports memory`);
      assert.ok(r.uptimeS !== null);
      // Every instance runs here: PSS is read from /proc, and shares the Node.js binary's pages.
      assert.ok(r.pssBytes !== null && r.pssBytes > 1_000_000, `${r.id} has a PSS`);
      assert.ok((r.pssBytes as number) < (r.rssBytes as number), `${r.id}: PSS ${r.pssBytes} below RSS ${r.rssBytes}`);
    }
    const table = renderStatus(rows);
    assert.match(table, /SERVICE\s+INSTANCE\s+VERSION\s+ADDRESS\s+HEALTH\s+UPTIME\s+MEMORY \(RSS\)\s+PSS/);
    assert.match(table, /sample\s+sample-1\s+v1\s+127\.0\.0\.1:\d+\s+passing/);
    assert.match(table, /^total PSS \d+\.\d MiB: shared pages counted once/m);
  });

  test('a service answers with x-served-by and keeps a valid x-request-id', async () => {
    const sample = await serviceUrl(sys.controlUrl, 'sample');
    const r = await http(`${sample}/api/sample/hello`, { headers: { 'x-request-id': 'req-123' } });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('x-served-by') ?? '', /^sample@v1#sample-[12]$/);
    assert.equal(r.headers.get('x-request-id'), 'req-123');
    const bad = await http(`${sample}/api/sample/hello`, { headers: { 'x-request-id': 'no spaces allowed here' } });
    assert.match(bad.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/, 'an invalid request id is replaced');
  });

  test('errors are problem+json: 400 naming the field, 404, 405, 413, 415, 500 without a stack', async () => {
    const base = `${await serviceUrl(sys.controlUrl, 'sample')}/api/sample`;
    const v = await http(`${base}/echo`, { method: 'POST', json: { name: 'x', count: 0 } });
    assert.equal(v.status, 400);
    assert.match(v.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.deepEqual(v.body.errors, [{ path: '/body/count', message: 'must be >= 1' }]);
    const extra = await http(`${base}/echo`, { method: 'POST', json: { name: 'x', count: 1, admin: true } });
    assert.equal(extra.body.errors[0].path, '/body/admin');
    const typed = await http(`${base}/echo`, { method: 'POST', json: { name: 'x', count: '3' } });
    assert.equal(typed.status, 400, 'no silent type coercion of bodies');
    const nf = await http(`${base}/nowhere`);
    assert.equal(nf.status, 404);
    assert.equal(nf.body.title, 'Not Found');
    const na = await http(`${base}/echo`, { method: 'DELETE' });
    assert.equal(na.status, 405);
    assert.equal(na.headers.get('allow'), 'POST');
    const big = await http(`${base}/echo`, { method: 'POST', json: { name: 'x'.repeat(2_000_000), count: 1 } });
    assert.equal(big.status, 413);
    const media = await http(`${base}/echo`, { method: 'POST', body: 'name=x', headers: { 'content-type': 'text/plain' } });
    assert.equal(media.status, 415);
    const boom = await http(`${base}/boom`);
    assert.equal(boom.status, 500);
    assert.doesNotMatch(boom.text, /secret|at .*\.js|stack/i);
    assert.equal(boom.body.type, 'https://concord.dev/problems/internal');
    const query = await http(`${base}/slow?ms=abc`);
    assert.equal(query.status, 400);
    assert.equal(query.body.errors[0].path, '/query/ms');
  });

  test('kill -9 of an instance: it leaves passing within interval + timeout, callers stop picking it, the supervisor restarts it', async () => {
    const client = new RegistryClient({ controlUrl: sys.controlUrl, log: quietLog });
    try {
      const watch = client.watch('sample');
      await pollUntil('two sample instances', () => watch.instances.length === 2);
      const victim = 'sample-2';
      const t0 = Date.now();
      const pid = sys.sup.signal(victim, 'SIGKILL');
      await pollUntil(`${victim} out of the watch`, () => !watch.instances.some((i) => i.id === victim), 3000);
      const gone = Date.now() - t0;
      // One interval (300 ms) plus timeout (300 ms), plus the watch's own round trip.
      assert.ok(gone < 300 + 300 + 400, `left passing after ${gone} ms`);
      for (let i = 0; i < 20; i++) assert.equal(watch.pick()?.id, 'sample-1');
      await sys.sup.waitRestarted(victim, pid, 10_000);
      await pollUntil(`${victim} passing again`, () => watch.instances.some((i) => i.id === victim), 5000);
      const picked = new Set(Array.from({ length: 4 }, () => watch.pick()?.id));
      assert.deepEqual([...picked].sort(), ['sample-1', 'sample-2']);
    } finally {
      client.close();
    }
  });

  test('the control plane restarted (kill -9): within 10 s every live instance is passing again', async () => {
    const pid = sys.sup.signal('control-plane-1', 'SIGKILL');
    const t0 = Date.now();
    await sys.sup.waitRestarted('control-plane-1', pid, 10_000);
    await sys.sup.waitPassing(['control-plane-1', 'sample-1', 'sample-2'], 10_000);
    assert.ok(Date.now() - t0 < 10_000);
  });

  test('the control plane restarted with its registry file lost: instances register again', async () => {
    deleteRegistryOnRestart = true;
    try {
      const pid = sys.sup.signal('control-plane-1', 'SIGKILL');
      await sys.sup.waitRestarted('control-plane-1', pid, 10_000);
      await sys.sup.waitPassing(['control-plane-1', 'sample-1', 'sample-2'], 10_000);
    } finally {
      deleteRegistryOnRestart = false;
    }
  });

  test('SIGTERM with requests in flight: they complete, then the instance deregisters and exits 0', async () => {
    const proc = fork(appEntry('sample'), [], {
      env: { ...process.env, ...FAST_CHECKS, CONCORD_CONTROL_URL: sys.controlUrl, CONCORD_INSTANCE_ID: 'sample-term', CONCORD_DATA_DIR: sys.dataDir, CONCORD_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    const exit = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    const port = await new Promise<number>((r) => proc.on('message', (m: { type: string; port: number }) => m.type === 'listening' && r(m.port)));
    await pollUntil('sample-term passing', async () => (await instances(sys.controlUrl)).some((i) => i.id === 'sample-term' && i.status === 'passing'));
    const inflight = Array.from({ length: 5 }, () => http(`http://127.0.0.1:${port}/api/sample/slow?ms=1500`));
    await new Promise((r) => setTimeout(r, 200)); // let them reach the handler
    proc.kill('SIGTERM');
    const results = await Promise.all(inflight);
    for (const r of results) assert.equal(r.status, 200);
    assert.equal(await exit, 0);
    assert.ok(!(await instances(sys.controlUrl)).some((i) => i.id === 'sample-term'), 'deregistered');
  });
});

describe('configuration errors and the CLI', () => {
  test('a bad CONCORD_GATEWAY_PORT stops `concord up` with a message naming the variable', async () => {
    const r = await runCli(['up'], { CONCORD_GATEWAY_PORT: 'abc', CONCORD_DATA_DIR: join(outputDir('cli'), 'bad') });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /CONCORD_GATEWAY_PORT="abc" is invalid: expected a TCP port/);
  });

  test('`concord up --help` prints its usage and starts nothing; an unknown option of up, status, config or audit stops it with exit 2 naming the option', async () => {
    const data = join(outputDir('cli'), 'help');
    rmSync(data, { recursive: true, force: true });
    const help = await runCli(['up', '--help'], { CONCORD_DATA_DIR: data });
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^usage: concord up \(no options\)/);
    assert.equal(existsSync(data), false, 'up --help must not create the data directory (nothing started)');
    const cases: Array<[string[], RegExp]> = [
      [['up', '--bogus'], /unknown option --bogus; this command takes none/],
      [['status', '--jsn'], /unknown option --jsn; known: --json/],
      [['config', 'status', '--jsn'], /unknown option --jsn; known: --json/],
      [['audit', '--quiet-timeout=abc'], /--quiet-timeout=abc: "abc" is not a duration/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(args, { CONCORD_DATA_DIR: data });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    assert.equal(existsSync(data), false);
  });

  test('a service with a bad variable exits non-zero naming it and the accepted form', async () => {
    const proc = spawn(process.execPath, [appEntry('sample')], {
      env: { ...process.env, CONCORD_CHECK_INTERVAL: '10x', OTEL_TRACES_EXPORTER: 'jaeger', OTEL_BSP_SCHEDULE_DELAY: '5s', OTEL_TRACES_SAMPLER_ARG: '1.5', OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    proc.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise((r) => proc.on('exit', r));
    assert.notEqual(code, 0);
    assert.match(stderr, /CONCORD_CHECK_INTERVAL="10x" is invalid: expected a duration/);
    assert.match(stderr, /OTEL_TRACES_EXPORTER="jaeger" is invalid: expected one of otlp, none/);
    assert.match(stderr, /OTEL_BSP_SCHEDULE_DELAY="5s" is invalid: expected an integer/);
    assert.match(stderr, /OTEL_TRACES_SAMPLER_ARG="1.5" is invalid: expected a decimal number from 0 to 1/);
    assert.match(stderr, /OTEL_EXPORTER_OTLP_ENDPOINT="collector:4318" is invalid: expected an absolute http\(s\) URL/);
  });

  test('a bad topology file stops start-up with a message saying how to fix it', async () => {
    const dir = outputDir('cli');
    const file = join(dir, 'bad-topology.yaml');
    (await import('node:fs')).writeFileSync(file, 'services:\n  - name: sample\n    instances: 0\n');
    const r = await runCli(['up'], { CONCORD_TOPOLOGY: file, CONCORD_DATA_DIR: join(dir, 'bad') });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /instances must be an integer from 1 to 16/);
  });

  test('`concord up` prints the ready line, and SIGINT stops everything within 10 s, exit 0, no process left', async () => {
    const dataDir = join(outputDir('cli'), 'up');
    rmSync(dataDir, { recursive: true, force: true });
    const proc = spawn(process.execPath, [join(ROOT, 'cli/dist/src/main.js'), 'up'], {
      env: { ...process.env, CONCORD_DATA_DIR: dataDir, CONCORD_CONTROL_PORT: '0', CONCORD_GATEWAY_PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (out += d));
    const exit = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
    const line = await pollUntil('ready line', () => /concord ready gateway=(http:\/\/127\.0\.0\.1:\d+) console=(http:\/\/127\.0\.0\.1:\d+)/.exec(out), 30_000);
    const rows = await collectStatus(line[2]!);
    const pids = rows.map((r) => r.pid).filter((p): p is number => p !== null);
    assert.ok(pids.length >= 3);
    const t0 = Date.now();
    proc.kill('SIGINT');
    assert.equal(await exit, 0);
    assert.ok(Date.now() - t0 < 10_000);
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `pid ${pid} still alive`);
    // Reverse order: the control plane stops last.
    const stops = [...out.matchAll(/^(\S+)\s+│.*\bstopped$/gm)].map((m) => m[1]).filter((s) => s !== 'supervisor');
    assert.equal(stops.at(-1), 'control-plane-1', out);
  });
});

function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [join(ROOT, 'cli/dist/src/main.js'), ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 20_000);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
