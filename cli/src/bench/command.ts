/**
 * `concord bench`: registers users, places orders through the gateway (flat out or at a fixed
 * rate) with live progress, prints a table, writes JSON and HTML reports, then audits.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { renderAudit, runAudit } from '../audit/audit.js';
import { type EmbeddedSystem, startEmbedded } from '../embedded.js';
import { DEFAULT_TOPOLOGY } from '../paths.js';
import { ProgressLine } from '../progress.js';
import { loadTopology } from '../supervisor/topology.js';
import { ArgError, type ArgSpec, parseArgs, usage } from './args.js';
import { type CpuSnapshot, addCpu, cpuPerOrder, cpuSecondsByInstance, emptyCpuTally, warmUpWithCpuReading } from './cpu.js';
import { type LoadResult, runLoad } from './loadgen.js';
import { type BenchReport, renderHtml, renderTable } from './report.js';
import { MAX_USERS, prepare, usersFor } from './setup.js';

export const BENCH_ARGS = {
  duration: { kind: 'duration', default: 10_000, help: 'how long to place orders, e.g. 10s, 1m' },
  warmup: { kind: 'duration', default: 0, help: 'orders placed first, at the same rate, left out of the figures (still audited), e.g. 10s' },
  rate: { kind: 'int', default: 0, min: 0, max: 1_000_000, help: 'orders per second (open model); 0 = flat out' },
  connections: { kind: 'int', default: 64, min: 1, max: 10_000, help: 'HTTP connections to the gateway' },
  users: { kind: 'int', default: 0, min: 0, max: MAX_USERS, help: 'users placing orders (0 = enough for the rate limits, with wallets that last the run)' },
  products: { kind: 'int', default: 50, min: 1, max: 10_000, help: 'products to spread orders over' },
  wait: { kind: 'int', default: 5, min: 0, max: 60, help: 'Prefer: wait=<s> on each order' },
  gateway: { kind: 'url', default: '', help: 'bench a running system at this URL instead of starting one' },
  control: { kind: 'url', default: '', help: "with --gateway: that system's control plane (npm start's is http://127.0.0.1:7700), for CPU per order by service" },
  topology: { kind: 'string', default: '', help: 'topology file for the system the bench starts' },
  out: { kind: 'string', default: 'bench/out', help: 'where reports go' },
  'no-audit': { kind: 'flag', default: false, help: 'skip the audit' },
} satisfies ArgSpec;

export const BENCH_USAGE = `usage: concord bench [options]\n${usage(BENCH_ARGS)}\n`;

const say = (s: string) => process.stderr.write(`[bench] ${s}\n`);

/** Every instance's CPU seconds, or null (said why) when an instance does not answer: the figures then go without it. */
async function cpuSnapshot(controlUrl: string): Promise<CpuSnapshot | null> {
  try {
    return await cpuSecondsByInstance(controlUrl);
  } catch (err) {
    say(`CPU per order left out: ${(err as Error).message}`);
    return null;
  }
}

/** Environment for a system under load: limits that a bench would otherwise trip, quiet logs. */
export function benchEnv(adminPassword: string): Record<string, string> {
  return {
    CONCORD_ADMIN_EMAIL: 'admin@bench.concord.test',
    CONCORD_ADMIN_PASSWORD: adminPassword,
    // Registration is not what is measured: a cheaper scrypt keeps setup short.
    CONCORD_SCRYPT_COST: '12',
    CONCORD_LOG_LEVEL: process.env.CONCORD_LOG_LEVEL ?? 'warn',
  };
}

export async function benchCommand(argv: string[]): Promise<number> {
  const a = parseArgs(argv, BENCH_ARGS);
  if (a.control && !a.gateway) throw new ArgError("--control goes with --gateway: a bench that starts its own system reads that system's control plane itself");
  const outDir = resolve(a.out);
  mkdirSync(outDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  let sys: EmbeddedSystem | null = null;
  let gatewayUrl = a.gateway;
  let adminEmail = process.env.CONCORD_ADMIN_EMAIL ?? 'admin@concord.local';
  let adminPassword = process.env.CONCORD_ADMIN_PASSWORD ?? '';
  try {
    if (!gatewayUrl) {
      adminPassword = randomBytes(12).toString('hex');
      const env = benchEnv(adminPassword);
      adminEmail = env.CONCORD_ADMIN_EMAIL as string;
      say('starting the system (embedded defaults)…');
      sys = await startEmbedded({ dir: join(outDir, `bench-${stamp}`), topology: loadTopology(a.topology || DEFAULT_TOPOLOGY), env });
      gatewayUrl = sys.gatewayUrl as string;
      say(`system ready: gateway ${gatewayUrl}, control plane ${sys.controlUrl}; logs in ${sys.logFile}`);
    } else if (!adminPassword) {
      say('set CONCORD_ADMIN_EMAIL and CONCORD_ADMIN_PASSWORD to bench a running system');
      return 2;
    }
    // Under the per-user rate limit, and wallets that last the whole run.
    const users = a.users || usersFor({ ratePerS: a.rate, runMs: a.warmup + a.duration, products: a.products });
    const prep = await prepare({ gatewayUrl, adminEmail, adminPassword, users, products: a.products, progress: say });
    const phase = (label: string, durationMs: number): Promise<LoadResult> => {
      say(`${label}: placing orders for ${durationMs / 1000} s ${a.rate ? `at ${a.rate}/s` : 'flat out'} over ${a.connections} connections…`);
      const progress = new ProgressLine();
      return runLoad({
        gatewayUrl,
        users: prep.users,
        productIds: prep.productIds,
        durationMs,
        ratePerS: a.rate,
        connections: a.connections,
        waitS: a.wait,
        onTick: (t) =>
          progress.update(
            `[bench] ${label} ${String(Math.round(t.elapsedMs / 1000)).padStart(4)}s/${durationMs / 1000}s  rate ${String(t.acknowledged).padStart(6)}/s  p50 ${t.p50Ms.toFixed(1).padStart(7)} ms  p99 ${t.p99Ms.toFixed(1).padStart(7)} ms  errors ${t.total.errors}  in flight ${t.inFlight}`,
          ),
      }).finally(() => progress.end());
    };
    // CPU per order by service, over the measured phase, from the control plane, which lists every
    // instance's metrics: the one of the system this bench started, or the one --control names.
    const controlUrl = sys?.controlUrl ?? (a.control || null);
    if (!controlUrl) say("CPU per order left out: name that system's control plane with --control (npm start's is http://127.0.0.1:7700)");
    // A warm-up (JIT, caches, connection pools) is audited like the rest but kept out of the figures.
    const warm = a.warmup > 0 ? await warmUpWithCpuReading(controlUrl ? [controlUrl] : [], a.warmup, () => phase('warm-up', a.warmup)) : null;
    const cpuBefore = controlUrl ? await cpuSnapshot(controlUrl) : null;
    const generatorBefore = process.cpuUsage();
    const load: LoadResult = await phase('measured', a.duration);
    const generator = process.cpuUsage(generatorBefore);
    const cpuAfter = controlUrl && cpuBefore ? await cpuSnapshot(controlUrl) : null;
    let cpu: BenchReport['cpu'] = null;
    if (cpuBefore && cpuAfter) {
      const tally = emptyCpuTally();
      addCpu(tally, cpuBefore, cpuAfter, load.acknowledged);
      cpu = { ...cpuPerOrder(tally), generatorUs: (generator.user + generator.system) / Math.max(1, load.acknowledged) };
    }
    if (warm) {
      say(`warm-up: ${warm.acknowledged} orders acknowledged (${warm.errors} errors), not in the figures below`);
      for (const k of ['acknowledged', 'seenConfirmed', 'cancelled'] as const) load.record[k] = [...warm.record[k], ...load.record[k]];
    }
    let audit: BenchReport['audit'] = null;
    if (!a['no-audit']) {
      say('auditing (waits for every saga to finish)…');
      audit = await runAudit({ gatewayUrl, token: prep.admin, quietTimeoutMs: 120_000, record: load.record });
    }
    const report: BenchReport = { kind: 'bench', command: `concord bench ${argv.join(' ')}`.trim(), load, audit, cpu };
    const base = join(outDir, `bench-${stamp}`);
    writeFileSync(`${base}.json`, JSON.stringify({ ...report, load: { ...load, record: { acknowledged: load.record.acknowledged.length, seenConfirmed: load.record.seenConfirmed.length } } }, null, 2));
    writeFileSync(`${base}.html`, renderHtml(report));
    process.stdout.write(`\n${renderTable(report)}\n\n`);
    if (audit) process.stdout.write(`${renderAudit(audit.results, process.stdout.isTTY === true)}\n\n`);
    process.stdout.write(`report: ${base}.html\n        ${base}.json\n`);
    return audit && !audit.ok ? 1 : 0;
  } finally {
    if (sys) {
      say('stopping the system…');
      await sys.stop();
    }
  }
}
