/**
 * `npm run bench:telemetry`: order-flow throughput with tracing at 100 % sampling against
 * tracing off, in one run. Each configuration runs on a freshly started system after a warm-up
 * (JIT, pools) that is not counted. Rounds alternate which configuration goes first (off, on |
 * on, off | …): whatever the previous system leaves behind (dirty pages being written back, a
 * cooling CPU) then falls on both alike. Target: ≤ 10 % cost.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DEFAULT_TOPOLOGY, benchEnv, loadTopology, prepare, runLoad, startEmbedded } from '@concord/cli';
import { OUT_DIR, median } from './system.js';

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 15_000);
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 10_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);

interface Sample {
  tracing: boolean;
  ordersPerS: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

async function once(tracing: boolean, round: number): Promise<Sample> {
  const password = randomBytes(9).toString('hex');
  const env: Record<string, string> = { ...benchEnv(password), CONCORD_TRACING: String(tracing), OTEL_TRACES_SAMPLER: 'always_on' };
  const dir = join(OUT_DIR, `telemetry-${tracing ? 'on' : 'off'}-${round}`);
  const sys = await startEmbedded({ dir, topology: loadTopology(DEFAULT_TOPOLOGY), env });
  try {
    const prep = await prepare({ gatewayUrl: sys.gatewayUrl as string, adminEmail: env.CONCORD_ADMIN_EMAIL as string, adminPassword: password, users: 100, products: 50, progress: () => {} });
    const label = `tracing ${tracing ? 'on (100 %)' : 'off'}`.padEnd(18);
    const load = (phase: string, durationMs: number) =>
      runLoad({
        gatewayUrl: sys.gatewayUrl as string,
        users: prep.users,
        productIds: prep.productIds,
        durationMs,
        ratePerS: 0,
        connections: CONNECTIONS,
        onTick: (t) => process.stderr.write(`\r[bench:telemetry] round ${round} ${label} ${phase} ${Math.round(t.elapsedMs / 1000)}s  ${t.acknowledged}/s  p99 ${t.p99Ms.toFixed(0)} ms   `),
      }).finally(() => process.stderr.write('\n'));
    if (WARMUP_MS > 0) await load('warm-up', WARMUP_MS);
    const r = await load('measured', DURATION_MS);
    return { tracing, ordersPerS: r.acknowledged / (r.durationMs / 1000), p50Ms: r.latency.p50Ms, p99Ms: r.latency.p99Ms, errors: r.errors };
  } finally {
    await sys.stop();
  }
}

async function main(): Promise<void> {
  const samples: Sample[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 === 1 ? [false, true] : [true, false];
    for (const tracing of order) samples.push(await once(tracing, round));
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const off = samples.filter((s) => !s.tracing);
  const on = samples.filter((s) => s.tracing);
  const offRate = mean(off.map((s) => s.ordersPerS));
  const onRate = mean(on.map((s) => s.ordersPerS));
  const cost = 1 - onRate / offRate;
  const rows = [
    ['tracing off', offRate, mean(off.map((s) => s.p50Ms)), mean(off.map((s) => s.p99Ms))],
    ['tracing on (100 %)', onRate, mean(on.map((s) => s.p50Ms)), mean(on.map((s) => s.p99Ms))],
  ] as const;
  process.stdout.write(`\norder flow, ${CONNECTIONS} connections flat out, ${DURATION_MS / 1000} s (after ${WARMUP_MS / 1000} s of warm-up) × ${ROUNDS} rounds per configuration\n`);
  process.stdout.write(`${'configuration'.padEnd(20)}${'orders/s'.padStart(10)}${'p50 ms'.padStart(10)}${'p99 ms'.padStart(10)}\n`);
  for (const [name, rate, p50, p99] of rows) process.stdout.write(`${name.padEnd(20)}${rate.toFixed(1).padStart(10)}${p50.toFixed(1).padStart(10)}${p99.toFixed(1).padStart(10)}\n`);
  // Each round's pair ran back to back, so its ratio is the least disturbed by the shared
  // machine drifting during the run; the median of the pairs resists one disturbed round.
  // `off`/`on` keep the rounds' order whichever configuration ran first in a round.
  const pairs = off.map((o, i) => 1 - (on[i] as Sample).ordersPerS / o.ordersPerS);
  const medianCost = median(pairs);
  process.stdout.write(`\ncost per round (on vs the off run next to it; odd rounds ran off first, even rounds on first): ${pairs.map((p) => `${(p * 100).toFixed(1)} %`).join(', ')}; median ${(medianCost * 100).toFixed(1)} %\n`);
  process.stdout.write(`tracing cost: ${(cost * 100).toFixed(1)} % of throughput (means; target ≤ 10 %): ${cost <= 0.1 ? 'met' : 'NOT met'}\n`);
  mkdirSync(OUT_DIR, { recursive: true });
  writeFileSync(join(OUT_DIR, 'telemetry.json'), JSON.stringify({ samples, offRate, onRate, cost, costPerRound: pairs, medianCost, durationMs: DURATION_MS, rounds: ROUNDS, connections: CONNECTIONS }, null, 2));
}

main().catch((err) => {
  process.stderr.write(`bench:telemetry failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
