/**
 * `npm run bench:ab -- --b NAME=VALUE [--a NAME=VALUE] …`: two configurations of the whole
 * default system compared side by side (side-by-side.ts): each round starts a fresh system for
 * A and one for B, warms both up and measures both at the same time; the verdict is B's CPU per
 * order against A's, by round and by service, with orders/s beside it. `--a`/`--b` (repeatable)
 * set an environment variable of that system, e.g.
 * `--b CONCORD_CHILD_NODE_OPTIONS=--max-semi-space-size=16`; A with none is the defaults.
 * `--a-root DIR`/`--b-root DIR` run that system's services from another built checkout, to compare
 * code: `git worktree add /tmp/base HEAD~1 && (cd /tmp/base && npm ci && npm run build)`, then
 * `npm run bench:ab -- --a-root /tmp/base` weighs the last commit. The supervisor, the load and
 * the figures are this checkout's either way.
 *
 * For performance work on a shared machine, where back-to-back runs of the same code moved CPU
 * per order by up to a third. Side by side (2026-11-27): A/A runs (no --a, no --b) read −2.1 %
 * and −2.3 % (the machine moved CPU per order from 2,425 to 3,960 µs between those rounds), and
 * +1.3 % and −1.0 %; 16 MiB young generations for every service −5.4 % and −6.8 %; tracing at
 * 100 % against none 12.0–16.6 %.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type SideResult, pct, printByService, sideBySideRound, totalCpu } from './side-by-side.js';
import { DEFAULT_TOPOLOGY, appEntry, appsOf, loadTopology } from '@concord/cli';
import { OUT_DIR, median, positiveOption } from './system.js';

const { values: opts } = parseArgs({
  options: {
    a: { type: 'string', multiple: true, default: [] },
    b: { type: 'string', multiple: true, default: [] },
    'a-root': { type: 'string' },
    'b-root': { type: 'string' },
    rounds: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '90' },
    duration: { type: 'string', default: '30' },
    connections: { type: 'string', default: '32' },
  },
});

/**
 * `--a-root`/`--b-root`: a built checkout of another revision whose services that system runs,
 * to compare code rather than settings; one that is not built exits 2 saying how to make it.
 */
function rootOf(option: 'a' | 'b'): string | undefined {
  const given = opts[`${option}-root`];
  if (given === undefined) return undefined;
  const root = resolve(given);
  try {
    for (const app of appsOf(loadTopology(DEFAULT_TOPOLOGY))) appEntry(app, root);
  } catch (err) {
    process.stderr.write(`--${option}-root: ${(err as Error).message}; make one with: git worktree add ${given} <revision> && (cd ${given} && npm ci && npm run build)\n`);
    process.exit(2);
  }
  return root;
}

/** NAME=VALUE pairs as an environment; anything else exits 2 naming the option. */
function envOf(option: 'a' | 'b'): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of opts[option] ?? []) {
    const eq = pair.indexOf('=');
    if (eq < 1 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(pair.slice(0, eq))) {
      process.stderr.write(`--${option} takes NAME=VALUE (an environment variable for system ${option.toUpperCase()}), got ${JSON.stringify(pair)}\n`);
      process.exit(2);
    }
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}

const A = envOf('a');
const B = envOf('b');
const A_ROOT = rootOf('a');
const B_ROOT = rootOf('b');
const ROUNDS = positiveOption(opts, 'rounds');
const WARMUP_S = positiveOption(opts, 'warmup');
const DURATION_S = positiveOption(opts, 'duration');
const CONNECTIONS = positiveOption(opts, 'connections');
const describe = (env: Record<string, string>, root: string | undefined) =>
  `${Object.keys(env).length === 0 ? 'the defaults' : Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')}${root ? `, services built in ${root}` : ''}`;

async function main(): Promise<void> {
  if (Object.keys(A).length === 0 && Object.keys(B).length === 0 && A_ROOT === B_ROOT) process.stderr.write('[bench:ab] A and B are both the defaults: an A/A run, which shows what the comparison itself scatters\n');
  const a = { key: 'A', env: A, root: A_ROOT };
  const b = { key: 'B', env: B, root: B_ROOT };
  const rounds: Array<Record<'A' | 'B', SideResult>> = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const r = await sideBySideRound({
      prefix: 'bench:ab',
      round,
      rounds: ROUNDS,
      configs: round % 2 === 1 ? [a, b] : [b, a],
      warmupMs: WARMUP_S * 1000,
      durationMs: DURATION_S * 1000,
      connections: CONNECTIONS,
      runMs: (WARMUP_S + DURATION_S) * 1000,
    });
    rounds.push({ A: r.A as SideResult, B: r.B as SideResult });
  }
  const cpuDiffs = rounds.map((r) => r.B.cpuUsPerOrder / r.A.cpuUsPerOrder - 1);
  process.stdout.write(`\nA: ${describe(A, A_ROOT)}\nB: ${describe(B, B_ROOT)}\nside by side, fresh systems, ${WARMUP_S} s of warm-up and ${DURATION_S} s measured at the same time, ${CONNECTIONS} connections each, × ${ROUNDS} rounds (odd rounds start A first)\n`);
  process.stdout.write(`${'round'.padEnd(8)}${'A /s'.padStart(10)}${'B /s'.padStart(10)}${'A µs'.padStart(10)}${'B µs'.padStart(10)}${'B vs A'.padStart(10)}\n`);
  for (const [i, r] of rounds.entries()) {
    const d = cpuDiffs[i] as number;
    process.stdout.write(
      `${String(i + 1).padEnd(8)}${r.A.ordersPerS.toFixed(1).padStart(10)}${r.B.ordersPerS.toFixed(1).padStart(10)}${r.A.cpuUsPerOrder.toFixed(0).padStart(10)}${r.B.cpuUsPerOrder.toFixed(0).padStart(10)}${`${d >= 0 ? '+' : ''}${pct(d)}`.padStart(10)}\n`,
    );
  }
  const byService = printByService({ label: 'A', cpu: totalCpu(rounds, 'A') }, { label: 'B', cpu: totalCpu(rounds, 'B') });
  const med = median(cpuDiffs);
  process.stdout.write(`B's CPU per order against A's: ${med >= 0 ? '+' : ''}${pct(med)} (median of the rounds; the busier system takes more of the shared cores, so orders/s understate a difference)\n`);
  mkdirSync(OUT_DIR, { recursive: true });
  writeFileSync(
    join(OUT_DIR, 'ab.json'),
    JSON.stringify(
      {
        a: A,
        b: B,
        aRoot: A_ROOT ?? null,
        bRoot: B_ROOT ?? null,
        warmupS: WARMUP_S,
        durationS: DURATION_S,
        connections: CONNECTIONS,
        rounds: rounds.map((r) => ({ A: { ordersPerS: r.A.ordersPerS, cpuUsPerOrder: r.A.cpuUsPerOrder }, B: { ordersPerS: r.B.ordersPerS, cpuUsPerOrder: r.B.cpuUsPerOrder } })),
        cpuDiffs,
        medianCpuDiff: med,
        cpuUsPerOrderByService: byService,
      },
      null,
      2,
    ),
  );
}

main().catch((err) => {
  process.stderr.write(`bench:ab failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
