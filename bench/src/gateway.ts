/**
 * `npm run bench:gateway`: proxied GET throughput and latency of the gateway, with
 * authentication and rate limiting on (limits set high), against (a) the same upstream called
 * directly and (b) nginx as a reverse proxy to the same upstream — in one run, same connections
 * and duration for each — then a CPU profile of the gateway's hot path.
 *
 *   node bench/dist/src/gateway.js [--duration 8] [--rounds 3] [--connections 32] [--warmup 3]
 *                                  [--no-profile] [--profile-seconds 6] [--no-nginx] [--no-install]
 *                                  [--no-tracing]   (CONCORD_TRACING=false everywhere: what tracing costs)
 *
 * Results: a table on stdout and bench/out/gateway.json; the profile in bench/out/gateway-profile/.
 */
import { type ChildProcess, fork, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { ProgressLine, ROOT, appEntry } from '@concord/cli';
import autocannon, { type Result } from 'autocannon';
import { type BenchSystem, OUT_DIR, json, median, pollUntil, positiveOption, startSystem } from './system.js';

const { values: opts } = parseArgs({
  options: {
    duration: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '32' },
    warmup: { type: 'string', default: '3' },
    'profile-seconds': { type: 'string', default: '6' },
    'no-profile': { type: 'boolean', default: false },
    'no-nginx': { type: 'boolean', default: false },
    'no-install': { type: 'boolean', default: false },
    'no-tracing': { type: 'boolean', default: false },
  },
});
const DURATION_S = positiveOption(opts, 'duration');
const ROUNDS = positiveOption(opts, 'rounds');
const CONNECTIONS = positiveOption(opts, 'connections');
const WARMUP_S = Number(opts.warmup);
const PROFILE_S = positiveOption(opts, 'profile-seconds');
const PATH = '/api/users/me';

const say = (line: string) => process.stdout.write(`${line}\n`);

// ---------------------------------------------------------------- nginx

const NGINX_DIR = join(OUT_DIR, 'nginx');

function findNginx(): string | null {
  for (const p of ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/bin/nginx', '/usr/bin/nginx']) if (existsSync(p)) return p;
  const r = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
}

function installNginx(): string | null {
  if (opts['no-install'] || process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get')) return null;
  say('nginx is not installed: trying apt-get install -y nginx-light (--no-install skips this)');
  const r = spawnSync('apt-get', ['install', '-y', 'nginx-light'], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 180_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (r.status !== 0) say(`apt-get install nginx-light failed (${r.status ?? r.signal})`);
  return findNginx();
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** One nginx worker (like one gateway process), keep-alive to the upstream, loopback only. */
async function startNginx(bin: string, upstreamPort: number): Promise<{ url: string; proc: ChildProcess }> {
  rmSync(NGINX_DIR, { recursive: true, force: true });
  mkdirSync(join(NGINX_DIR, 'tmp'), { recursive: true });
  const port = await freePort();
  const conf = join(NGINX_DIR, 'nginx.conf');
  writeFileSync(
    conf,
    `# Written by bench/src/gateway.ts for one benchmark run.
daemon off;
worker_processes 1;
pid ${NGINX_DIR}/nginx.pid;
error_log ${NGINX_DIR}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${NGINX_DIR}/tmp/body;
  proxy_temp_path ${NGINX_DIR}/tmp/proxy;
  fastcgi_temp_path ${NGINX_DIR}/tmp/fastcgi;
  uwsgi_temp_path ${NGINX_DIR}/tmp/uwsgi;
  scgi_temp_path ${NGINX_DIR}/tmp/scgi;
  upstream concord_user {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://concord_user;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`,
  );
  const proc = spawn(bin, ['-p', NGINX_DIR, '-c', conf, '-e', join(NGINX_DIR, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (c) => (stderr += c));
  const url = `http://127.0.0.1:${port}`;
  try {
    await pollUntil('nginx to listen', async () => proc.exitCode === null && (await fetch(`${url}/health/live`)).status === 200, 10_000);
  } catch (err) {
    proc.kill('SIGKILL');
    throw new Error(`nginx did not start: ${(err as Error).message}; ${stderr.trim()}`);
  }
  return { url, proc };
}

async function stopProcess(proc: ChildProcess, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
    }, graceMs);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    proc.kill(signal);
  });
}

// ---------------------------------------------------------------- load

interface Measured {
  target: string;
  round: number;
  reqPerS: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
}

function load(url: string, token: string, seconds: number, label: string): Promise<Result> {
  return new Promise((resolve, reject) => {
    let elapsed = 0;
    // Its last state gives way to the round's figures (`measure` prints them).
    const progress = new ProgressLine();
    const inst = autocannon({ url: `${url}${PATH}`, connections: CONNECTIONS, duration: seconds, headers: { authorization: `Bearer ${token}` }, timeout: 10 }, (err, result) => {
      progress.clear();
      if (err) reject(err);
      else resolve(result);
    });
    inst.on('tick', (t: { counter: number }) => {
      elapsed++;
      progress.update(`  ${label.padEnd(24)} ${String(elapsed).padStart(3)}/${seconds} s  ${String(t.counter).padStart(7)} req/s`);
    });
  });
}

async function measure(target: string, url: string, token: string, round: number): Promise<Measured> {
  const r = await load(url, token, DURATION_S, `${target} (round ${round})`);
  const m = { target, round, reqPerS: r.requests.average, p50Ms: r.latency.p50, p99Ms: r.latency.p99, non2xx: r.non2xx, errors: r.errors + r.timeouts };
  say(`  ${target.padEnd(8)} round ${round}: ${m.reqPerS.toFixed(0).padStart(7)} req/s  p50 ${m.p50Ms} ms  p99 ${m.p99Ms} ms${m.non2xx || m.errors ? `  (${m.non2xx} non-2xx, ${m.errors} errors!)` : ''}`);
  return m;
}

// ---------------------------------------------------------------- profile

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  /** Microseconds of the monotonic clock (the clock of process.hrtime in every process). */
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface HotFunction {
  name: string;
  where: string;
  selfMs: number;
  selfPct: number;
}

/**
 * Self time per function (summed over call sites), most first, over the samples taken inside
 * `window` (monotonic µs: the load, not start-up); idle time left out.
 */
export function topSelfTime(profile: CpuProfile, n: number, window: { fromUs: number; toUs: number }): { top: HotFunction[]; busyMs: number } {
  const byNode = new Map<number, ProfileNode>(profile.nodes.map((x) => [x.id, x]));
  const self = new Map<string, HotFunction>();
  let busyUs = 0;
  let atUs = profile.startTime;
  profile.samples.forEach((id, i) => {
    atUs += profile.timeDeltas[i] ?? 0;
    const node = byNode.get(id);
    const dt = profile.timeDeltas[i + 1] ?? 0;
    if (atUs < window.fromUs || atUs > window.toUs) return;
    if (!node || node.callFrame.functionName === '(idle)') return;
    busyUs += dt;
    const cf = node.callFrame;
    const file = cf.url.startsWith('file://') ? relative(ROOT, cf.url.slice('file://'.length)) : cf.url;
    const where = file ? `${file}:${cf.lineNumber + 1}` : '';
    const name = cf.functionName || '(anonymous)';
    const key = `${name} ${where}`;
    const h = self.get(key) ?? { name, where, selfMs: 0, selfPct: 0 };
    h.selfMs += dt / 1000;
    self.set(key, h);
  });
  const busyMs = busyUs / 1000;
  const top = [...self.values()].sort((a, b) => b.selfMs - a.selfMs).slice(0, n);
  for (const h of top) h.selfPct = busyMs > 0 ? (100 * h.selfMs) / busyMs : 0;
  return { top, busyMs };
}

/** A gateway of its own under --cpu-prof, loaded for PROFILE_S, stopped gracefully (the profile is written on exit). */
async function profileGateway(sys: BenchSystem, token: string, rateEnv: Record<string, string>): Promise<{ file: string; top: HotFunction[]; busyMs: number } | null> {
  const dir = join(OUT_DIR, 'gateway-profile');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const log = createWriteStream(join(dir, 'gateway.log'));
  const nowUs = () => Number(process.hrtime.bigint() / 1000n);
  const window = { fromUs: 0, toUs: 0 };
  const proc = fork(appEntry('gateway'), [], {
    execArgv: process.env.BENCH_NOPROF ? ['--enable-source-maps'] : ['--enable-source-maps', '--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-interval=250'],
    env: {
      ...process.env,
      ...rateEnv,
      CONCORD_DATA_DIR: sys.dataDir,
      CONCORD_CONTROL_URL: sys.controlUrl,
      CONCORD_INSTANCE_ID: 'gateway-profiled',
      CONCORD_GATEWAY_PORT: '0',
      CONCORD_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  proc.stdout?.pipe(log);
  proc.stderr?.pipe(log);
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the profiled gateway did not start within 30 s')), 30_000);
      proc.on('message', (m: { type?: string; port?: number }) => {
        if (m?.type === 'listening' && typeof m.port === 'number') {
          clearTimeout(timer);
          resolve(m.port);
        }
      });
      proc.once('exit', (code) => reject(new Error(`the profiled gateway exited (${code}); see ${join(dir, 'gateway.log')}`)));
    });
    const url = `http://127.0.0.1:${port}`;
    await load(url, token, WARMUP_S || 1, 'profiled gateway (warm-up)');
    window.fromUs = nowUs();
    const r = await load(url, token, PROFILE_S, 'profiled gateway');
    window.toUs = nowUs();
    say(`  profiled gateway: ${r.requests.average.toFixed(0)} req/s while sampling${r.non2xx || r.errors ? ` (${r.non2xx} non-2xx, ${r.errors} errors!)` : ''}`);
  } finally {
    await stopProcess(proc, 'SIGTERM', 10_000);
    log.end();
  }
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) return null;
  const path = join(dir, file);
  return { file: relative(ROOT, path), ...topSelfTime(JSON.parse(readFileSync(path, 'utf8')) as CpuProfile, 15, window) };
}

// ---------------------------------------------------------------- main

function summarize(rows: Measured[], target: string): { reqPerS: number; p50Ms: number; p99Ms: number; rounds: number[] } | null {
  const mine = rows.filter((r) => r.target === target);
  if (mine.length === 0) return null;
  return {
    // Medians: on a shared machine one disturbed round should not move the result.
    reqPerS: median(mine.map((r) => r.reqPerS)),
    p50Ms: median(mine.map((r) => r.p50Ms)),
    p99Ms: median(mine.map((r) => r.p99Ms)),
    rounds: mine.map((r) => Math.round(r.reqPerS)),
  };
}

async function main(): Promise<number> {
  const t0 = Date.now();
  mkdirSync(OUT_DIR, { recursive: true });
  say(`gateway benchmark: GET ${PATH} (authenticated, rate limits on but high), ${CONNECTIONS} connections, ${ROUNDS} round(s) × ${DURATION_S} s per target`);
  say(`machine: ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}, Node.js ${process.versions.node}`);
  say('the load generator (autocannon) runs in this process, on the same machine as everything it measures');

  const rateEnv: Record<string, string> = { CONCORD_RATE_LIMIT_PER_USER: '1000000', CONCORD_RATE_LIMIT_PER_IP: '1000000' };
  if (opts['no-tracing']) rateEnv.CONCORD_TRACING = 'false';
  say(`tracing: ${opts['no-tracing'] ? 'off (--no-tracing)' : 'on (the default; --no-tracing measures without it)'}`);
  const admin = { email: 'bench-admin@concord.bench', password: randomBytes(12).toString('hex') };
  say('starting control plane, user, payment and gateway …');
  const sys = await startSystem({
    name: 'gateway-bench',
    topology: 'services:\n  - name: user\n  - name: payment\n  - name: gateway\n',
    env: {
      ...rateEnv,
      CONCORD_ADMIN_EMAIL: admin.email,
      CONCORD_ADMIN_PASSWORD: admin.password,
      CONCORD_LOG_LEVEL: 'warn',
      CONCORD_SCRYPT_COST: '12',
      // Plain HTTP on every hop, as nginx and the direct client use: like is compared with like.
      CONCORD_MESH_MTLS: 'off',
    },
  });
  let nginx: { url: string; proc: ChildProcess } | null = null;
  const stopAll = async () => {
    if (nginx) await stopProcess(nginx.proc, 'SIGQUIT', 5000);
    await sys.stop();
  };
  const onSignal = () => {
    void stopAll().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const gw = sys.gatewayUrl as string;
    const user = sys.sup.children.get('user-1');
    if (!user?.port) throw new Error('user-1 is not running');
    const direct = `http://127.0.0.1:${user.port}`;
    const email = `bench-${Date.now()}@concord.bench`;
    const reg = await json(`${gw}/api/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: 'bench password 1', name: 'Bench' }) });
    if (reg.status !== 201) throw new Error(`register answered ${reg.status}`);
    const login = await json<{ token: string }>(`${gw}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: 'bench password 1' }) });
    const token = login.body.token;

    const targets: Array<[string, string]> = [
      ['direct', direct],
      ['gateway', gw],
    ];
    let nginxNote = '';
    if (!opts['no-nginx']) {
      const bin = findNginx() ?? installNginx();
      if (bin) {
        nginx = await startNginx(bin, user.port);
        targets.push(['nginx', nginx.url]);
        const v = spawnSync(bin, ['-v'], { encoding: 'utf8' });
        nginxNote = (v.stderr || v.stdout).trim();
        say(`${nginxNote}: one worker process, keep-alive (64) to the upstream, access log off (config: ${relative(ROOT, join(NGINX_DIR, 'nginx.conf'))})`);
      } else {
        say('skipped nginx: not installed and could not be installed (apt-get install -y nginx-light); only gateway vs direct is measured');
      }
    } else say('skipped nginx: --no-nginx');
    say('the gateway is one Node.js process (one event loop), compared with one nginx worker');

    for (const [name, url] of targets) {
      const r = await json<{ id: string }>(`${url}${PATH}`, { headers: { authorization: `Bearer ${token}` } });
      if (r.status !== 200) throw new Error(`${name} answered ${r.status} to GET ${PATH}`);
    }
    if (WARMUP_S > 0) {
      say(`warming up (${WARMUP_S} s each) …`);
      for (const [name, url] of targets) await load(url, token, WARMUP_S, `${name} (warm-up)`);
    }
    say('measuring …');
    const rows: Measured[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      // Alternate the order each round, so a drift of the machine does not favour one target.
      const order = round % 2 === 1 ? targets : [...targets].reverse();
      for (const [name, url] of order) rows.push(await measure(name, url, token, round));
    }

    const d = summarize(rows, 'direct');
    const g = summarize(rows, 'gateway');
    const n = summarize(rows, 'nginx');
    const ratio = (a: number | undefined, b: number | undefined) => (a && b ? a / b : null);
    const fmt = (x: number | null) => (x === null ? '—' : `${x.toFixed(2)}×`);
    say('');
    say(`medians over ${ROUNDS} round(s):`);
    say(`${'target'.padEnd(9)}${'req/s'.padStart(9)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'vs direct'.padStart(11)}${'vs nginx'.padStart(10)}   rounds (req/s)`);
    for (const [name, s] of [
      ['direct', d],
      ['nginx', n],
      ['gateway', g],
    ] as const) {
      if (!s) continue;
      say(
        `${name.padEnd(9)}${s.reqPerS.toFixed(0).padStart(9)}${String(s.p50Ms).padStart(9)}${String(s.p99Ms).padStart(9)}${fmt(ratio(s.reqPerS, d?.reqPerS)).padStart(11)}${fmt(ratio(s.reqPerS, n?.reqPerS)).padStart(10)}   ${s.rounds.join(', ')}`,
      );
    }
    const gVsN = ratio(g?.reqPerS, n?.reqPerS);
    say('');
    if (gVsN !== null) say(`gateway / nginx = ${gVsN.toFixed(2)} (target ≥ 0.80): ${gVsN >= 0.8 ? 'met' : 'NOT met'}`);
    const failures = rows.filter((r) => r.non2xx > 0 || r.errors > 0);
    if (failures.length) say(`warning: ${failures.map((r) => `${r.target} round ${r.round}: ${r.non2xx} non-2xx, ${r.errors} errors`).join('; ')}`);

    let profile: Awaited<ReturnType<typeof profileGateway>> = null;
    if (!opts['no-profile']) {
      say('');
      say(`profiling a gateway of its own (--cpu-prof, ${PROFILE_S} s of the same load) …`);
      profile = await profileGateway(sys, token, rateEnv);
      if (profile) {
        say(`top 15 functions by self time while loaded (${profile.busyMs.toFixed(0)} ms busy in ${PROFILE_S} s; ${profile.file}, open it in Chrome DevTools):`);
        for (const h of profile.top) say(`  ${h.selfPct.toFixed(1).padStart(5)} %  ${h.selfMs.toFixed(0).padStart(6)} ms  ${h.name}  ${h.where}`);
      } else say('no CPU profile was written (did the gateway exit gracefully?)');
    }

    const out = {
      at: new Date().toISOString(),
      path: PATH,
      connections: CONNECTIONS,
      durationS: DURATION_S,
      tracing: !opts['no-tracing'],
      rounds: ROUNDS,
      machine: { cpus: cpus().length, model: cpus()[0]?.model ?? null, loadavg: loadavg(), node: process.versions.node },
      nginx: nginxNote || null,
      results: { direct: d, gateway: g, nginx: n },
      ratios: { gatewayVsDirect: ratio(g?.reqPerS, d?.reqPerS), gatewayVsNginx: gVsN, nginxVsDirect: ratio(n?.reqPerS, d?.reqPerS) },
      runs: rows,
      profile,
      tookS: Math.round((Date.now() - t0) / 1000),
    };
    writeFileSync(join(OUT_DIR, 'gateway.json'), `${JSON.stringify(out, null, 2)}\n`);
    say('');
    say(`wrote ${relative(ROOT, join(OUT_DIR, 'gateway.json'))} (${out.tookS} s in all)`);
    return 0;
  } finally {
    await stopAll();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench:gateway failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
