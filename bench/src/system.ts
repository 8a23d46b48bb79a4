/** What the benchmarks share: where reports go, a system under test, option and HTTP helpers. */
import { join } from 'node:path';
import { type EmbeddedSystem, ROOT, startEmbedded } from '@concord/cli';

export const OUT_DIR = join(ROOT, 'bench', 'out');

export type BenchSystem = EmbeddedSystem;

/** A whole system for a benchmark, its data and log in bench/out/<name>/. */
export function startSystem(opts: { name: string; topology: string; env: Record<string, string> }): Promise<BenchSystem> {
  return startEmbedded({ dir: join(OUT_DIR, opts.name), topology: opts.topology, env: opts.env });
}

/** The median of `xs` (0 when empty): on a shared machine one disturbed round should not move a result. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? 0 : s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** A command-line option that must be a positive integer; anything else exits 2 naming it. */
export function positiveOption(values: Record<string, unknown>, name: string): number {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`--${name} must be a positive integer, got ${JSON.stringify(values[name])}\n`);
    process.exit(2);
  }
  return n;
}

export async function json<T>(url: string, init: RequestInit & { body?: string } = {}): Promise<{ status: number; body: T }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

/** Polls until `probe` returns a truthy value (bounded). */
export async function pollUntil<T>(what: string, probe: () => Promise<T>, timeoutMs: number): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v as NonNullable<T>;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
