/**
 * Starts a whole Concord system for a test: real processes on free ports, a fresh data dir,
 * logs kept in test-output/<name>/system.log (printed tail on failure helps debugging).
 */
import { appendFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, type ReadyInfo, Supervisor, type Topology, makeFormatter, parseTopology } from '@concord/cli';

export interface System extends ReadyInfo {
  sup: Supervisor;
  dataDir: string;
  logFile: string;
  stop(): Promise<void>;
}

export const OUTPUT_DIR = join(ROOT, 'test-output');

export function outputDir(name: string): string {
  const dir = join(OUTPUT_DIR, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

export async function startSystem(opts: {
  name: string;
  topology: Topology | string;
  env?: Record<string, string>;
  beforeRestart?: ConstructorParameters<typeof Supervisor>[0]['beforeRestart'];
}): Promise<System> {
  const dir = outputDir(opts.name);
  const dataDir = join(dir, 'data');
  rmSync(dataDir, { recursive: true, force: true });
  const logFile = join(dir, 'system.log');
  rmSync(logFile, { force: true });
  const format = makeFormatter({ color: false, raw: false, width: 16 });
  const topology = typeof opts.topology === 'string' ? parseTopology(opts.topology, `${opts.name} topology`) : opts.topology;
  const sup = new Supervisor({
    topology,
    dataDir,
    controlPort: 0,
    gatewayPort: 0,
    env: { ...process.env, CONCORD_LOG_LEVEL: process.env.CONCORD_LOG_LEVEL ?? 'info', ...opts.env },
    output: (source, line) => appendFileSync(logFile, `${format(source, line)}\n`),
    beforeRestart: opts.beforeRestart,
  });
  try {
    const ready = await sup.start();
    return { ...ready, sup, dataDir, logFile, stop: () => sup.stop() };
  } catch (err) {
    await sup.stop();
    throw new Error(`${(err as Error).message} (logs: ${logFile})`);
  }
}

/** Polls `probe` until it returns a truthy value or the deadline passes. No sleeps as synchronization. */
export async function pollUntil<T>(what: string, probe: () => T | Promise<T>, timeoutMs = 10_000, intervalMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface JsonResponse<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export async function http<T = any>(url: string, init: RequestInit & { json?: unknown } = {}): Promise<JsonResponse<T>> {
  const headers = new Headers(init.headers);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set('content-type', 'application/json');
    body = JSON.stringify(init.json);
  }
  const res = await fetch(url, { ...init, headers, body, signal: init.signal ?? AbortSignal.timeout(30_000) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON */
  }
  return { status: res.status, headers: res.headers, body: parsed as T, text };
}

export async function instances(controlUrl: string): Promise<Array<{ id: string; service: string; status: string; port: number; version: string }>> {
  const r = await http<{ items: Array<{ id: string; service: string; status: string; port: number; version: string }> }>(`${controlUrl}/api/registry/instances`);
  return r.body.items;
}
