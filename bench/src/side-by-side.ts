/**
 * Whole systems under load for a benchmark, and the side-by-side comparison: two fresh systems,
 * each configured by its own environment, started one after the other, then warmed up and
 * measured at the same time, each with its own users and connections. Whatever the shared
 * machine does meanwhile it does to both, which back-to-back runs cannot give (their CPU per
 * order moved by up to a third between runs of the same code). Both saturate the same cores and
 * the busier system takes more of them, so the comparison is on CPU per order (every instance's
 * `process_cpu_seconds_total` over the measured window), by service; orders/s are reported too.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { type CpuSnapshot, type CpuTally, DEFAULT_TOPOLOGY, type LoadResult, ProgressLine, addCpu, benchEnv, cpuSecondsByInstance, cpuTotal, emptyCpuTally, loadTopology, perOrderUs, prepare, runLoad, startEmbedded, usersFor, warmUpWithCpuReading } from '@concord/cli';
import { OUT_DIR } from './system.js';

/** Orders of a phase that may end otherwise than CONFIRMED before the run stops as not comparable. */
const MAX_UNCONFIRMED_SHARE = 0.01;

export type System = Awaited<ReturnType<typeof startEmbedded>>;
export type Prepared = Awaited<ReturnType<typeof prepare>>;
export type Tick = Parameters<NonNullable<Parameters<typeof runLoad>[0]['onTick']>>[0];

export const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
const tickLine = (t: Tick) => `${t.acknowledged}/s  p99 ${t.p99Ms.toFixed(0)} ms`;

/**
 * A fresh default system in bench/out/<dir> with `env` over the bench's own, and users whose
 * wallets last `runMs` of flat-out orders; its services from the built checkout `appsRoot` when
 * given (the supervisor, the load and the figures stay this checkout's).
 */
export async function startWithUsers(dir: string, env: Record<string, string>, runMs: number, appsRoot?: string): Promise<{ sys: System; prep: Prepared }> {
  const password = randomBytes(9).toString('hex');
  const all: Record<string, string> = { ...benchEnv(password), ...env };
  const sys = await startEmbedded({ dir: join(OUT_DIR, dir), topology: loadTopology(DEFAULT_TOPOLOGY), env: all, appsRoot });
  try {
    const prep = await prepare({ gatewayUrl: sys.gatewayUrl as string, adminEmail: all.CONCORD_ADMIN_EMAIL as string, adminPassword: password, users: usersFor({ ratePerS: 0, runMs, products: 50 }), products: 50, progress: () => {} });
    return { sys, prep };
  } catch (err) {
    await sys.stop();
    throw err;
  }
}

/**
 * Places orders on `sys` flat out for a phase; the live line (`[prefix] label phase …`) is the
 * loader's own unless `onTick` takes it over. A phase with over 1 % of its orders not CONFIRMED
 * fails: refused orders (a drained wallet, no stock) take a shorter path and would not compare.
 */
export function loader(sys: System, prep: Prepared, opts: { prefix: string; label: string; connections: number; onTick?: (phase: string, t: Tick) => void }) {
  const { prefix, label, onTick } = opts;
  return (phase: string, durationMs: number): Promise<LoadResult> => {
    // A taken-over live line is the taker's to show and end.
    const progress = onTick ? null : new ProgressLine();
    return runLoad({
      gatewayUrl: sys.gatewayUrl as string,
      users: prep.users,
      productIds: prep.productIds,
      durationMs,
      ratePerS: 0,
      connections: opts.connections,
      onTick: (t) => (onTick ? onTick(phase, t) : progress?.update(`[${prefix}] ${label} ${phase} ${Math.round(t.elapsedMs / 1000)}s  ${tickLine(t)}`)),
    })
      .then((r) => {
        const refused = Object.entries(r.orderStatuses).reduce((n, [status, count]) => (status === 'CONFIRMED' ? n : n + count), 0);
        if (refused > MAX_UNCONFIRMED_SHARE * r.acknowledged) throw new Error(`${label} ${phase}: ${refused} of ${r.acknowledged} orders did not end CONFIRMED (${JSON.stringify(r.orderStatuses)}); the figures would not compare`);
        return r;
      })
      .finally(() => progress?.end());
  };
}

/**
 * Orders per second of a phase, leaving out its first second (connections opening): the orders
 * acknowledged between the first and the last tick over the time between them (a tick's own
 * window stretches by however late its timer fired).
 */
export function steadyRate(r: LoadResult): number {
  const first = r.ticks[0];
  const last = r.ticks[r.ticks.length - 1];
  if (!first || !last || last.elapsedMs - first.elapsedMs < 1000) return r.acknowledged / (r.durationMs / 1000);
  return (last.total.acknowledged - first.total.acknowledged) / ((last.elapsedMs - first.elapsedMs) / 1000);
}

export interface SideConfig {
  /** Short name in the live line and the results. */
  key: string;
  /** Environment of this system over the bench's own. */
  env: Record<string, string>;
  /** A built checkout whose services this system runs (default: this one). */
  root?: string;
}

export interface SideResult {
  ordersPerS: number;
  cpuUsPerOrder: number;
  cpu: CpuTally;
}

/**
 * One round: the two systems of `configs`, started in that order (alternate it between rounds),
 * warmed up together, then measured together; results by config key.
 */
export async function sideBySideRound(opts: {
  prefix: string;
  round: number;
  rounds: number;
  configs: [SideConfig, SideConfig];
  warmupMs: number;
  durationMs: number;
  connections: number;
  runMs: number;
}): Promise<Record<string, SideResult>> {
  const started: Array<{ config: SideConfig; sys: System; prep: Prepared }> = [];
  try {
    for (const config of opts.configs) started.push({ config, ...(await startWithUsers(`${opts.prefix.replace(/[^a-z0-9]+/gi, '-')}-${config.key}-${opts.round}`, config.env, opts.runMs, config.root)) });
    // One live line for both loads: each tick updates its part (a new phase starts it afresh).
    let last: Record<string, string> = {};
    let lastPhase = '';
    const progress = new ProgressLine();
    const show = (key: string) => (phase: string, t: Tick) => {
      if (phase !== lastPhase) {
        last = {};
        lastPhase = phase;
      }
      last[key] = tickLine(t);
      const parts = opts.configs.map((c) => `${c.key} ${last[c.key] ?? '-'}`).join('  |  ');
      progress.update(`[${opts.prefix}] side by side ${opts.round}/${opts.rounds} ${phase} ${Math.round(t.elapsedMs / 1000)}s  ${parts}`);
    };
    const loads = started.map((s) => ({ ...s, load: loader(s.sys, s.prep, { prefix: opts.prefix, label: s.config.key, connections: opts.connections, onTick: show(s.config.key) }) }));
    if (opts.warmupMs > 0) {
      const controlUrls = loads.map((l) => l.sys.controlUrl as string);
      await warmUpWithCpuReading(controlUrls, opts.warmupMs, () => Promise.all(loads.map((l) => l.load('warm-up', opts.warmupMs))).finally(() => progress.end()));
    }
    // Both loads start after both CPU readings and are read again after both end: one window.
    const before = await Promise.all(loads.map((l) => cpuSecondsByInstance(l.sys.controlUrl as string)));
    const results = await Promise.all(loads.map((l) => l.load('measured', opts.durationMs))).finally(() => progress.end());
    const after = await Promise.all(loads.map((l) => cpuSecondsByInstance(l.sys.controlUrl as string)));
    const out: Record<string, SideResult> = {};
    loads.forEach((l, i) => {
      const tally = emptyCpuTally();
      const r = results[i] as LoadResult;
      addCpu(tally, before[i] as CpuSnapshot, after[i] as CpuSnapshot, r.acknowledged);
      out[l.config.key] = { ordersPerS: steadyRate(r), cpuUsPerOrder: perOrderUs(cpuTotal(tally), tally.orders), cpu: tally };
    });
    return out;
  } finally {
    // Every system stops even when one stop fails (and that does not hide the error that got here).
    await Promise.allSettled(started.map((s) => s.sys.stop()));
  }
}

/** The CPU of every round's `key` system, summed by service. */
export function totalCpu<K extends string>(rounds: Array<Record<K, SideResult>>, key: K): CpuTally {
  const t = emptyCpuTally();
  for (const r of rounds) {
    const one = r[key];
    for (const [service, seconds] of one.cpu.seconds) t.seconds.set(service, (t.seconds.get(service) ?? 0) + seconds);
    t.orders += one.cpu.orders;
  }
  return t;
}

/**
 * Prints CPU per order by service for two tallies, with the difference, and a last row for all
 * services; returns the by-service figures.
 */
export function printByService(
  a: { label: string; cpu: CpuTally },
  b: { label: string; cpu: CpuTally },
  title = 'CPU per order by service (µs, all rounds)',
): Record<string, Record<string, number>> {
  const row = (name: string, x: number, y: number) => process.stdout.write(`${name.padEnd(16)}${x.toFixed(0).padStart(10)}${y.toFixed(0).padStart(10)}${(y - x).toFixed(0).padStart(8)}\n`);
  process.stdout.write(`${title}:\n${'service'.padEnd(16)}${a.label.padStart(10)}${b.label.padStart(10)}${'+'.padStart(8)}\n`);
  const services = [...new Set([...a.cpu.seconds.keys(), ...b.cpu.seconds.keys()])].sort();
  const byService = Object.fromEntries(
    services.map((service) => {
      const x = perOrderUs(a.cpu.seconds.get(service) ?? 0, a.cpu.orders);
      const y = perOrderUs(b.cpu.seconds.get(service) ?? 0, b.cpu.orders);
      row(service, x, y);
      return [service, { [a.label]: x, [b.label]: y }];
    }),
  );
  row('all', perOrderUs(cpuTotal(a.cpu), a.cpu.orders), perOrderUs(cpuTotal(b.cpu), b.cpu.orders));
  return byService;
}
