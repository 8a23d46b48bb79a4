/** Starting a Concord system for a benchmark (the few lines of test/src/harness.ts it needs). */
import { appendFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, type ReadyInfo, Supervisor, makeFormatter, parseTopology } from '@concord/cli';

export const OUT_DIR = join(ROOT, 'bench', 'out');

export interface BenchSystem extends ReadyInfo {
  sup: Supervisor;
  dataDir: string;
  logFile: string;
  stop(): Promise<void>;
}

export async function startSystem(opts: { name: string; topology: string; env: Record<string, string> }): Promise<BenchSystem> {
  const dir = join(OUT_DIR, opts.name);
  mkdirSync(dir, { recursive: true });
  const dataDir = join(dir, 'data');
  rmSync(dataDir, { recursive: true, force: true });
  const logFile = join(dir, 'system.log');
  rmSync(logFile, { force: true });
  const format = makeFormatter({ color: false, raw: false, width: 16 });
  const sup = new Supervisor({
    topology: parseTopology(opts.topology, `${opts.name} topology`),
    dataDir,
    controlPort: 0,
    gatewayPort: 0,
    env: { ...process.env, ...opts.env },
    output: (source, line) => appendFileSync(logFile, `${format(source, line)}\n`),
  });
  try {
    const ready = await sup.start();
    return { ...ready, sup, dataDir, logFile, stop: () => sup.stop() };
  } catch (err) {
    await sup.stop();
    throw new Error(`${(err as Error).message} (logs: ${logFile})`);
  }
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
