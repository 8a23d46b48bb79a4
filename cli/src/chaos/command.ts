/**
 * `concord chaos [--scenario <name|file>]`: runs a load and, at the same time, a schedule of
 * faults — kill -9 of instances (the supervisor restarts them), pause/resume (SIGSTOP/SIGCONT),
 * mesh fault injection on a route, and network partitions (each instance in its own network
 * namespace, see netns.ts; root only) — on a topology with at least two instances of every service.
 * Then it waits for quiescence, audits, and exits non-zero on any violation.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { mulberry32 } from '@concord/core';
import { renderAudit, runAudit } from '../audit/audit.js';
import { type ArgSpec, parseArgs, usage } from '../bench/args.js';
import { benchEnv } from '../bench/command.js';
import { runLoad } from '../bench/loadgen.js';
import { type BenchReport, renderHtml, renderTable } from '../bench/report.js';
import { prepare, usersFor } from '../bench/setup.js';
import { startEmbedded } from '../embedded.js';
import { ROOT } from '../paths.js';
import { ProgressLine } from '../progress.js';
import type { Supervisor } from '../supervisor/supervisor.js';
import { loadTopology } from '../supervisor/topology.js';
import { NetnsLab, netnsUnavailable } from './netns.js';
import { type FaultAction, type Scenario, loadScenario, needsNetworkLab } from './scenario.js';

export const CHAOS_ARGS = {
  scenario: { kind: 'string', default: 'kills', help: 'a scenario name from cli/scenarios/ or a file path' },
  duration: { kind: 'duration', help: 'override the scenario load duration' },
  rate: { kind: 'int', min: 0, max: 1_000_000, help: 'override the orders per second (0 = flat out)' },
  out: { kind: 'string', default: 'bench/out', help: 'where reports go' },
  seed: { kind: 'int', min: 0, max: 4_294_967_295, help: 'the seed of the random fault targets: the same seed picks the same instances while the same ones run (default: drawn, and printed)' },
} satisfies ArgSpec;

export const CHAOS_USAGE = `usage: concord chaos [options]\n${usage(CHAOS_ARGS)}\n`;

const say = (s: string) => process.stderr.write(`[chaos] ${s}\n`);
/** Products the chaos load spreads its orders over. */
const CHAOS_PRODUCTS = 50;

interface ChaosEvent {
  atMs: number;
  label: string;
}

/** A running instance for a fault target, chosen by `random` among those that match. */
export function pickInstance(sup: Pick<Supervisor, 'children'>, target: string, random: () => number): string | null {
  const all = [...sup.children.values()].filter((c) => c.proc !== null && c.state === 'running');
  let pool = all;
  if (target === 'random') pool = all.filter((c) => c.spec.service !== 'control-plane');
  else if (target === 'control-plane') pool = all.filter((c) => c.spec.service === 'control-plane');
  else pool = all.filter((c) => c.spec.instanceId === target || c.spec.service === target);
  if (pool.length === 0) return null;
  return (pool[Math.floor(random() * pool.length)] as (typeof pool)[number]).spec.instanceId;
}

function faultVirtualService(service: string, a: Extract<FaultAction, { kind: 'meshFault' }>): string {
  const fault: string[] = [];
  if (a.abortPercent > 0) fault.push(`        abort:\n          httpStatus: ${a.abortStatus}\n          percentage:\n            value: ${a.abortPercent}`);
  if (a.delayPercent > 0) fault.push(`        delay:\n          fixedDelay: ${a.delayMs}ms\n          percentage:\n            value: ${a.delayPercent}`);
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: chaos-${service}
spec:
  hosts: [${service}]
  http:
    - fault:
${fault.join('\n')}
      route:
        - destination:
            host: ${service}
`;
}

/** Every instance in its own network namespace (partition faults need it); root only. */
function openLab(scenario: string, log: (line: string) => void): NetnsLab {
  const why = netnsUnavailable();
  if (why) throw new Error(`scenario ${scenario} has partition faults, which put every instance in its own network namespace: ${why}`);
  const lab = NetnsLab.create();
  log(`network lab: bridge ${lab.bridge} at ${lab.gatewayAddress}/24, one namespace per instance`);
  return lab;
}

/** `seed`: of the random fault targets (`kill: random`, …), so that a run can face the same faults again. */
export async function runScenario(s: Scenario, opts: { outDir: string; log: (line: string) => void; seed: number }): Promise<{ ok: boolean; report: BenchReport; violations: string[] }> {
  const password = randomBytes(12).toString('hex');
  const env = benchEnv(password);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const topologyFile = existsSync(s.topology) ? s.topology : join(ROOT, 'cli', 'topologies', `${s.topology}.yaml`);
  const lab = needsNetworkLab(s) ? openLab(s.name, opts.log) : null;
  const network = lab ? { controlHost: lab.gatewayAddress, placement: (spec: { instanceId: string }) => ({ host: lab.host(spec.instanceId).address, prefix: lab.prefix(spec.instanceId) }) } : undefined;
  opts.log(`starting the ${s.topology} topology…`);
  let sys: Awaited<ReturnType<typeof startEmbedded>>;
  try {
    sys = await startEmbedded({ dir: join(opts.outDir, `chaos-${stamp}`), topology: loadTopology(topologyFile), env, restartBackoffMaxMs: 2000, network });
  } catch (err) {
    lab?.destroy();
    throw err;
  }
  const events: ChaosEvent[] = [];
  const timers: NodeJS.Timeout[] = [];
  const undo: Array<() => Promise<void>> = [];
  const violations: string[] = [];
  try {
    const gatewayUrl = sys.gatewayUrl as string;
    const prep = await prepare({ gatewayUrl, adminEmail: env.CONCORD_ADMIN_EMAIL as string, adminPassword: password, users: usersFor({ ratePerS: s.load.rate, runMs: s.load.durationMs, products: CHAOS_PRODUCTS }), products: CHAOS_PRODUCTS, progress: opts.log });
    const t0 = Date.now();
    const random = mulberry32(opts.seed);
    const progress = new ProgressLine();
    const note = (label: string) => {
      events.push({ atMs: Date.now() - t0, label });
      // An event gets a line of its own; the live line comes back with the next tick.
      progress.clear();
      opts.log(`+${((Date.now() - t0) / 1000).toFixed(1)}s ${label}`);
    };
    const act = async (a: FaultAction): Promise<void> => {
      try {
        if (a.kind === 'kill') {
          const id = pickInstance(sys.sup, a.target, random);
          if (!id) return note(`kill ${a.target}: nothing running to kill`);
          sys.sup.signal(id, 'SIGKILL');
          note(`kill -9 ${id}`);
        } else if (a.kind === 'partition') {
          const id = pickInstance(sys.sup, a.target, random);
          if (!id || !lab) return note(`partition ${a.target}: nothing running`);
          lab.partition(id);
          note(`partition ${id} for ${a.forMs} ms`);
          // Healed by its timer, or when the faults stop, whichever comes first.
          let healed = false;
          const heal = async () => {
            if (healed) return;
            healed = true;
            lab.heal(id);
            note(`healed ${id}`);
          };
          undo.push(heal);
          timers.push(setTimeout(() => void heal(), a.forMs));
        } else if (a.kind === 'pause') {
          const id = pickInstance(sys.sup, a.target, random);
          if (!id) return note(`pause ${a.target}: nothing running`);
          sys.sup.pause(id);
          note(`SIGSTOP ${id} for ${a.forMs} ms`);
          const resume = async () => {
            try {
              sys.sup.resume(id);
              note(`SIGCONT ${id}`);
            } catch {
              /* restarted meanwhile */
            }
          };
          undo.push(resume);
          timers.push(setTimeout(() => void resume(), a.forMs));
        } else {
          const yaml = faultVirtualService(a.service, a);
          const r = await fetch(`${sys.controlUrl}/api/config`, { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: yaml });
          if (r.status !== 200) return note(`mesh fault on ${a.service} refused: ${(await r.text()).slice(0, 200)}`);
          note(`mesh fault on ${a.service}: ${a.abortPercent}% abort ${a.abortStatus}, ${a.delayPercent}% delay ${a.delayMs} ms, for ${a.forMs} ms`);
          const clear = async () => {
            await fetch(`${sys.controlUrl}/api/config/VirtualService/chaos-${a.service}`, { method: 'DELETE' }).catch(() => null);
            note(`mesh fault on ${a.service} cleared`);
          };
          undo.push(clear);
          timers.push(setTimeout(() => void clear(), a.forMs));
        }
      } catch (err) {
        note(`fault ${a.kind} failed: ${(err as Error).message}`);
      }
    };
    for (const rule of s.faults) {
      if (rule.atMs !== undefined) timers.push(setTimeout(() => void act(rule.action), rule.atMs));
      if (rule.everyMs !== undefined) {
        const every = rule.everyMs;
        const tick = () => {
          if (Date.now() - t0 + every > s.load.durationMs) return;
          timers.push(
            setTimeout(() => {
              void act(rule.action);
              tick();
            }, every),
          );
        };
        tick();
      }
    }
    const load = await runLoad({
      gatewayUrl,
      gatewayUrls: sys.gatewayUrls,
      users: prep.users,
      productIds: prep.productIds,
      durationMs: s.load.durationMs,
      ratePerS: s.load.rate,
      connections: s.load.connections,
      maxTries: 12,
      cancelRatio: s.load.cancelRatio,
      onTick: (t) =>
        progress.update(
          `[chaos] ${String(Math.round(t.elapsedMs / 1000)).padStart(4)}s/${s.load.durationMs / 1000}s  ${String(t.acknowledged).padStart(5)}/s  p99 ${t.p99Ms.toFixed(0).padStart(6)} ms  errors ${t.total.errors}`,
        ),
    }).finally(() => progress.end());
    for (const t of timers) clearTimeout(t);
    for (const u of undo) await u();
    note('faults stopped; waiting for every saga to finish');
    const settleStart = Date.now();
    const audit = await runAudit({ gatewayUrl, token: prep.admin, quietTimeoutMs: s.expect.settleWithinMs, record: load.record });
    const settledMs = Date.now() - settleStart;
    const success = load.acknowledged / Math.max(1, load.sent);
    if (success < s.expect.minSuccess) violations.push(`success ratio ${(success * 100).toFixed(3)} % is below ${(s.expect.minSuccess * 100).toFixed(3)} %`);
    for (const r of audit.results) if (!r.ok) violations.push(`${r.name}: ${r.detail}`);
    const report: BenchReport = {
      kind: 'chaos',
      command: `concord chaos --scenario ${s.name}`,
      load,
      audit,
      events,
      extra: { scenario: s, settledMs, successRatio: success, violations },
    };
    return { ok: violations.length === 0, report, violations };
  } finally {
    for (const t of timers) clearTimeout(t);
    opts.log('stopping the system…');
    await sys.stop();
    lab?.destroy();
  }
}

export async function chaosCommand(argv: string[]): Promise<number> {
  const a = parseArgs(argv, CHAOS_ARGS);
  const s = loadScenario(a.scenario);
  if (a.duration !== undefined) s.load.durationMs = a.duration;
  if (a.rate !== undefined) s.load.rate = a.rate;
  const seed = a.seed ?? randomBytes(4).readUInt32LE(0);
  const outDir = resolve(a.out);
  mkdirSync(outDir, { recursive: true });
  say(`scenario ${s.name}: ${s.description}`);
  say(`random fault targets from seed ${seed} (--seed ${seed} picks the same ones again)`);
  const { ok, report, violations } = await runScenario(s, { outDir, log: say, seed });
  const base = join(outDir, `chaos-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  writeFileSync(`${base}.json`, JSON.stringify({ ...report, load: { ...report.load, record: undefined } }, null, 2));
  writeFileSync(`${base}.html`, renderHtml(report));
  process.stdout.write(`\n${renderTable(report)}\n\n`);
  if (report.audit) process.stdout.write(`${renderAudit(report.audit.results, process.stdout.isTTY === true)}\n\n`);
  process.stdout.write(`report: ${base}.html\n`);
  if (!ok) {
    process.stdout.write(`\nchaos FAILED:\n${violations.map((v) => `  - ${v}`).join('\n')}\n`);
    return 1;
  }
  process.stdout.write('\nchaos passed: no invariant violated, no acknowledged order lost\n');
  return 0;
}
