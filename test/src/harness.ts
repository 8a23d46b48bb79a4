/**
 * Starts a whole Concord system for a test: real processes on free ports, a fresh data dir,
 * logs kept in test-output/<name>/system.log (printed tail on failure helps debugging).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_TOPOLOGY, type EmbeddedSystem, ROOT, type Supervisor, type Topology, loadTopology, startEmbedded } from '@concord/cli';

export type System = EmbeddedSystem;

export const OUTPUT_DIR = join(ROOT, 'test-output');

/** One instance of every service (recommendation in v1 only). */
export const ONE_OF_EACH = `services:
  - name: user
  - name: inventory
  - name: payment
  - name: points
  - name: recommendation
  - name: order
  - name: gateway
`;

/** The topology `npm start` runs (cli/topologies/default.yaml). */
export const DEFAULT_SYSTEM: Topology = loadTopology(DEFAULT_TOPOLOGY);

/** Runs the `concord` CLI as a user would; its output (stdout, then the tail of stderr) and exit code. */
export function runCli(args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [join(ROOT, 'cli/dist/src/main.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CONCORD_LOG_LEVEL: 'warn' } });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out = (out + d).slice(-200_000)));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/**
 * A process's scheduler state (R, S, T for stopped, Z, …) and parent pid, from /proc/<pid>/stat;
 * null when it is gone (or the machine has no /proc).
 */
export function procStat(pid: number): { state: string; ppid: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid …": comm may hold spaces and parentheses, so read after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '?', ppid: Number(fields[1]) };
  } catch {
    return null;
  }
}

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
  // Tests crash processes on purpose, many times a minute: keep restarts quick.
  // Source maps make stack traces in test logs point at the TypeScript.
  return startEmbedded({ dir: outputDir(opts.name), topology: opts.topology, env: { CONCORD_SOURCE_MAPS: '1', ...opts.env }, beforeRestart: opts.beforeRestart, restartBackoffMaxMs: 1000 });
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

/** The origin of a passing instance of a service (tests that talk to a service directly). */
export async function serviceUrl(controlUrl: string, service: string): Promise<string> {
  const found = await pollUntil(`a passing ${service}`, async () => (await instances(controlUrl)).find((i) => i.service === service && i.status === 'passing'), 10_000);
  return `http://127.0.0.1:${found.port}`;
}

export const TEST_ADMIN = { email: 'admin@concord.test', password: 'admin-password-for-tests' };
/** Environment every system test passes so the seeded admin is known. */
export const ADMIN_ENV = { CONCORD_ADMIN_EMAIL: TEST_ADMIN.email, CONCORD_ADMIN_PASSWORD: TEST_ADMIN.password };

export interface TestUser {
  id: string;
  email: string;
  token: string;
  auth: { authorization: string };
}

let userCounter = 0;

/** Registers a fresh user through `baseUrl` (the gateway, or the user service) and logs in. */
export async function newUser(baseUrl: string, prefix = 'user'): Promise<TestUser> {
  const email = `${prefix}-${process.pid}-${Date.now()}-${++userCounter}@example.test`;
  const password = 'correct horse battery staple';
  const reg = await http(`${baseUrl}/api/auth/register`, { method: 'POST', json: { email, password, name: `Test ${prefix}` } });
  if (reg.status !== 201) throw new Error(`register answered ${reg.status}: ${reg.text}`);
  return { id: reg.body.id, email, ...(await login(baseUrl, email, password)) };
}

export async function login(baseUrl: string, email: string, password: string): Promise<{ token: string; auth: { authorization: string } }> {
  const r = await http(`${baseUrl}/api/auth/login`, { method: 'POST', json: { email, password } });
  if (r.status !== 200) throw new Error(`login answered ${r.status}: ${r.text}`);
  return { token: r.body.token, auth: { authorization: `Bearer ${r.body.token}` } };
}

export async function adminLogin(baseUrl: string): Promise<{ token: string; auth: { authorization: string } }> {
  return login(baseUrl, TEST_ADMIN.email, TEST_ADMIN.password);
}

/** Whether something accepts TCP connections at host:port (tests that need Redis probe first). */
export async function tcpReachable(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** The URL of one supervised instance (e.g. a second gateway started from the topology). */
export function instanceUrl(sys: System, instanceId: string): string {
  const c = sys.sup.children.get(instanceId);
  if (!c?.port) throw new Error(`${instanceId} is not running`);
  return `http://127.0.0.1:${c.port}`;
}
