/**
 * CPU per order, by service: every instance's `process_cpu_seconds_total` (from the targets the
 * control plane lists for Prometheus) read before and after a phase, divided by the orders
 * acknowledged in it. It shows where an order's cost goes, and it is steadier than orders per
 * second on a shared machine: it does not depend on how much of the machine the system got.
 */

/** How long one instance's /metrics may take to answer. */
const SCRAPE_TIMEOUT_MS = 10_000;

export type CpuSnapshot = Map<string, { service: string; seconds: number }>;

/** CPU seconds each instance has used so far, by instance id, with its service. */
export async function cpuSecondsByInstance(controlUrl: string): Promise<CpuSnapshot> {
  const res = await fetch(`${controlUrl}/api/prometheus/targets`, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
  if (!res.ok) throw new Error(`${controlUrl}/api/prometheus/targets answered ${res.status}`);
  const targets = (await res.json()) as Array<{ targets: string[]; labels: Record<string, string> }>;
  const out: CpuSnapshot = new Map();
  await Promise.all(
    targets.map(async (t) => {
      const address = t.targets[0] ?? '?';
      const m = await fetch(`http://${address}${t.labels.__metrics_path__ ?? '/metrics'}`, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
      const line = (await m.text()).split('\n').find((l) => l.startsWith('process_cpu_seconds_total'));
      const seconds = Number(line?.slice(line.lastIndexOf(' ') + 1));
      if (!line || !Number.isFinite(seconds)) throw new Error(`${address} has no process_cpu_seconds_total`);
      out.set(t.labels.instance_id ?? address, { service: t.labels.service ?? address, seconds });
    }),
  );
  return out;
}

/**
 * Runs a warm-up with one reading of each system's CPU a third of the way into it, its figures
 * unused. A reading fetches every instance's `/metrics` over plain HTTP, a kind of connection a
 * service under load otherwise does not see: the first one deoptimizes its HTTP server code at
 * once (wrong maps), and made at the start of the measured phase it put ~130 bailouts across the
 * system, and the reoptimizing after them, in the measured window; made here, 43 remain there
 * (`--trace-deopt`, 2026-11-28). A failed reading is left to the readings that count; the wait
 * holds no process open.
 */
export async function warmUpWithCpuReading<T>(controlUrls: readonly string[], warmupMs: number, warmUp: () => Promise<T>): Promise<T> {
  const read = new Promise((resolve) => setTimeout(resolve, Math.floor(warmupMs / 3)).unref()).then(() =>
    Promise.all(controlUrls.map((url) => cpuSecondsByInstance(url).catch(() => undefined))),
  );
  const result = await warmUp();
  await read;
  return result;
}

/** CPU used over one or more phases, in seconds by service, and the orders acknowledged meanwhile. */
export interface CpuTally {
  seconds: Map<string, number>;
  orders: number;
}

export const emptyCpuTally = (): CpuTally => ({ seconds: new Map(), orders: 0 });

/**
 * Adds a phase's CPU by service. An instance that restarted meanwhile (its counter began again)
 * counts from its restart, and one that first appears in `after` (started during the phase)
 * counts whole; one that is gone by `after` is left out (its use is unknown).
 */
export function addCpu(into: CpuTally, before: CpuSnapshot, after: CpuSnapshot, orders: number): void {
  for (const [instance, a] of after) {
    const b = before.get(instance)?.seconds ?? 0;
    into.seconds.set(a.service, (into.seconds.get(a.service) ?? 0) + (a.seconds >= b ? a.seconds - b : a.seconds));
  }
  into.orders += orders;
}

export const cpuTotal = (t: CpuTally): number => [...t.seconds.values()].reduce((a, b) => a + b, 0);

/** Microseconds of CPU per order. */
export const perOrderUs = (seconds: number, orders: number): number => (seconds * 1e6) / Math.max(1, orders);

/** A tally as reported: µs per order by service, the most expensive first, and the total. */
export function cpuPerOrder(t: CpuTally): { orders: number; totalUs: number; byService: Array<{ service: string; us: number }> } {
  const byService = [...t.seconds.entries()].map(([service, s]) => ({ service, us: perOrderUs(s, t.orders) })).sort((a, b) => b.us - a.us);
  return { orders: t.orders, totalUs: perOrderUs(cpuTotal(t), t.orders), byService };
}
