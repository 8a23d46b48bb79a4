/**
 * The supervisor: starts the control plane, then every process of a topology on free ports;
 * restarts crashed processes with bounded exponential backoff; reports ready once every
 * instance is registered and passing; stops everything in reverse order within a bound.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { backoffDelayMs } from '@concord/core';
import { BOOTSTRAP_SECRET_PATH, bootstrapToken } from '@concord/platform';
import { appEntry } from '../paths.js';
import { type ProcessSpec, type Topology, processesOf } from './topology.js';

export interface SupervisorOptions {
  topology: Topology;
  dataDir: string;
  controlPort: number;
  gatewayPort: number;
  /** Environment passed to every process (on top of which the supervisor sets its own). */
  env: NodeJS.ProcessEnv;
  /** Receives every output line, already prefixed. */
  output: (source: string, line: string) => void;
  readyTimeoutMs?: number;
  /** Grace period for a stop before SIGKILL. */
  stopTimeoutMs?: number;
  /** Runs before a crashed process is started again (tests use it to change the world). */
  beforeRestart?: (spec: ProcessSpec) => void;
  /** Cap of the restart backoff (default 10 s). */
  restartBackoffMaxMs?: number;
  /**
   * Where processes live on the network (default: all on 127.0.0.1). Chaos runs put each
   * instance in its own network namespace: `placement` names its address and the command
   * prefix that enters the namespace; the control plane stays in this one, at `controlHost`.
   */
  network?: { controlHost: string; placement(spec: ProcessSpec): { host: string; prefix: string[] } };
  /** A built checkout whose apps run instead of this one's (default: this checkout). */
  appsRoot?: string;
}

export interface ChildInfo {
  spec: ProcessSpec;
  proc: ChildProcess | null;
  pid: number | null;
  port: number | null;
  url: string | null;
  restarts: number;
  startedAtMs: number;
  /** A public port kept across restarts (gateways: clients know it). */
  pinnedPort: number | null;
  lastExit: { code: number | null; signal: NodeJS.Signals | null } | null;
  state: 'starting' | 'running' | 'backoff' | 'stopped';
}

export interface ReadyInfo {
  controlUrl: string;
  gatewayUrl: string | null;
  /** Every gateway instance (a topology may run several). */
  gatewayUrls: string[];
}

const RESTART_BACKOFF = { baseMs: 100, capMs: 10_000 };
/**
 * V8 sizing for many small processes on one machine: small semi-spaces (the young generation)
 * and a bounded old space make each process collect sooner instead of growing into the
 * machine's free memory — the whole system stays under 1 GiB RSS under load (measured: 1.41 GiB
 * with V8's defaults, ~880 MiB with 2 MiB everywhere).
 *
 * The two processes every order crosses with the most work, order and the gateway, get 16 MiB
 * semi-spaces: with 2 MiB, objects that live for one request (tens of milliseconds under load:
 * the request, its saga step, its spans) outlive two scavenges and are copied into the old
 * generation, whose collector then costs them CPU on every order. Measured in place with
 * `process_cpu_seconds_total` per order, normalised by payment's (which kept 2 MiB) across two
 * interleaved restarts each: order −20 %, gateway −15 % CPU per order. RSS after load: 921 MiB
 * in all (+~50 MiB); inventory at 16 MiB as well gained −8 % for 953–975 MiB, and is left at 2.
 * Later flags (CONCORD_CHILD_NODE_OPTIONS, a topology's nodeArgs) override these.
 */
const SEMI_SPACE_MIB: Readonly<Record<string, number>> = { order: 16, gateway: 16 };
const DEFAULT_SEMI_SPACE_MIB = 2;
const OLD_SPACE_MIB = 192;

/** The V8 flags an app's processes start with, before any given by the environment or topology. */
export function childNodeDefaults(app: string): string[] {
  return [`--max-semi-space-size=${SEMI_SPACE_MIB[app] ?? DEFAULT_SEMI_SPACE_MIB}`, `--max-old-space-size=${OLD_SPACE_MIB}`];
}
/**
 * A process's Node.js flags: the app's defaults, then source maps when CONCORD_SOURCE_MAPS=1, then
 * CONCORD_CHILD_NODE_OPTIONS (space-separated), then the topology's nodeArgs; later ones win. Read
 * from the system's environment (`env`), not this process's: a process that starts two systems
 * (a side-by-side bench) can give each its own.
 */
export function childExecArgv(spec: Pick<ProcessSpec, 'app' | 'nodeArgs'>, env: NodeJS.ProcessEnv): string[] {
  return [...childNodeDefaults(spec.app), ...(env.CONCORD_SOURCE_MAPS === '1' ? ['--enable-source-maps'] : []), ...(env.CONCORD_CHILD_NODE_OPTIONS?.split(' ').filter(Boolean) ?? []), ...spec.nodeArgs];
}

/** A process that ran this long before crashing restarts with the base delay again. */
const STABLE_AFTER_MS = 10_000;

export const CONTROL_PLANE: ProcessSpec = { service: 'control-plane', app: 'control-plane', instanceId: 'control-plane-1', version: 'v1', env: {}, nodeArgs: [] };

export class Supervisor {
  readonly children = new Map<string, ChildInfo>();
  private stopping = false;
  private controlPort: number;
  private gatewayPort: number;
  private readonly dataDir: string;
  private readonly listeners = new Map<string, Array<(c: ChildInfo) => void>>();
  private restartTimers = new Set<NodeJS.Timeout>();
  /** Instances stopped on purpose (not restarted until started again). */
  private readonly held = new Set<string>();
  /** The CA's bootstrap secret, read once the control plane has created it. */
  private caSecret: Buffer | null = null;

  constructor(private readonly opts: SupervisorOptions) {
    this.controlPort = opts.controlPort;
    this.gatewayPort = opts.gatewayPort;
    this.dataDir = resolve(opts.dataDir);
    mkdirSync(this.dataDir, { recursive: true });
  }

  get controlUrl(): string {
    return `http://${this.opts.network?.controlHost ?? '127.0.0.1'}:${this.controlPort}`;
  }

  /** The address an instance listens on. */
  hostOf(spec: ProcessSpec): string {
    const net = this.opts.network;
    if (!net) return '127.0.0.1';
    return spec.service === 'control-plane' ? net.controlHost : net.placement(spec).host;
  }

  private say(line: string): void {
    this.opts.output('supervisor', line);
  }

  async start(): Promise<ReadyInfo> {
    const cp = this.spawn(CONTROL_PLANE);
    await this.waitListening(cp, 30_000);
    this.controlPort = cp.port as number; // pinned: restarts keep the same address
    const secretFile = join(this.dataDir, ...BOOTSTRAP_SECRET_PATH);
    if (this.opts.env.CONCORD_MESH_MTLS !== 'off' && existsSync(secretFile)) this.caSecret = Buffer.from(readFileSync(secretFile, 'utf8').trim(), 'hex');
    const specs = processesOf(this.opts.topology);
    const started = specs.map((s) => this.spawn(s));
    await Promise.all(started.map((c) => this.waitListening(c, 60_000)));
    const gateways = started.filter((c) => c.spec.service === 'gateway');
    for (const g of gateways) g.pinnedPort = g.port;
    if (gateways[0]?.port) this.gatewayPort = gateways[0].port;
    await this.waitPassing([CONTROL_PLANE.instanceId, ...specs.map((s) => s.instanceId)], this.opts.readyTimeoutMs ?? 60_000);
    const gatewayUrls = gateways.map((g) => `http://${this.hostOf(g.spec)}:${g.pinnedPort}`);
    return { controlUrl: this.controlUrl, gatewayUrl: gatewayUrls[0] ?? null, gatewayUrls };
  }

  private envFor(spec: ProcessSpec, pinnedPort: number | null): NodeJS.ProcessEnv {
    // The first gateway takes the configured public port; others a free one; restarts keep theirs.
    const gatewayPort = pinnedPort ?? (spec.instanceId === 'gateway-1' ? this.gatewayPort : 0);
    const env: NodeJS.ProcessEnv = {
      // glibc's per-thread malloc arenas (scrypt, SQLite and TLS run on other threads) hold on
      // to freed memory; two arenas cut ~30 MiB of RSS from a busy process (measured).
      MALLOC_ARENA_MAX: '2',
      // A fixed mmap threshold: blocks of 128 KiB and more (scrypt's 16-32 MiB, big buffers)
      // are mapped and given back on free, instead of glibc raising the threshold after the
      // first free and keeping them in the heap; the heap's top is trimmed above 256 KiB.
      // Under a flat-out bench: total RSS 990-1,008 -> 941 MiB, throughput unchanged (measured).
      MALLOC_MMAP_THRESHOLD_: '131072',
      MALLOC_TRIM_THRESHOLD_: '262144',
      ...this.opts.env,
      ...spec.env,
      CONCORD_DATA_DIR: this.dataDir,
      CONCORD_INSTANCE_ID: spec.instanceId,
      CONCORD_SERVICE_VERSION: spec.version,
      CONCORD_CONTROL_URL: this.controlUrl,
      CONCORD_CONTROL_PORT: String(this.controlPort),
      CONCORD_SERVICE_PORT: '0',
      CONCORD_GATEWAY_PORT: String(gatewayPort),
    };
    if (this.opts.network) env.CONCORD_HOST = this.hostOf(spec);
    if (this.caSecret && spec.service !== 'control-plane') env.CONCORD_CA_TOKEN = bootstrapToken(this.caSecret, spec.service);
    return env;
  }

  private spawn(spec: ProcessSpec): ChildInfo {
    let info = this.children.get(spec.instanceId);
    if (!info) {
      info = { spec, proc: null, pid: null, port: null, url: null, restarts: 0, startedAtMs: 0, pinnedPort: null, state: 'starting', lastExit: null };
      this.children.set(spec.instanceId, info);
    }
    const child = info;
    const execArgv = childExecArgv(spec, this.opts.env);
    const options = {
      env: this.envFor(spec, child.pinnedPort),
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'] as Array<'ignore' | 'pipe' | 'ipc'>,
      // Own process group: a terminal's Ctrl-C reaches only the supervisor, which then stops
      // the processes in order. A child whose supervisor vanishes exits on IPC disconnect.
      detached: true,
    };
    const prefix = spec.service === 'control-plane' ? [] : (this.opts.network?.placement(spec).prefix ?? []);
    // A prefix (`ip netns exec <ns>`) execs node in place: the pid, signals and IPC stay node's.
    const entry = appEntry(spec.app, this.opts.appsRoot);
    const proc = prefix.length ? spawn(prefix[0] as string, [...prefix.slice(1), process.execPath, ...execArgv, entry], options) : fork(entry, [], { ...options, execArgv });
    child.proc = proc;
    child.pid = proc.pid ?? null;
    child.port = null;
    child.state = 'starting';
    child.startedAtMs = Date.now();
    for (const stream of [proc.stdout, proc.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => this.opts.output(spec.instanceId, line));
    }
    proc.on('message', (m: { type?: string; port?: number; url?: string }) => {
      if (m?.type === 'listening' && typeof m.port === 'number') {
        child.port = m.port;
        child.url = m.url ?? `http://${this.hostOf(spec)}:${m.port}`;
        child.state = 'running';
        for (const fn of this.listeners.get(spec.instanceId) ?? []) fn(child);
        this.listeners.delete(spec.instanceId);
      }
    });
    proc.on('exit', (code, signal) => this.onExit(child, proc, code, signal));
    proc.on('error', (err) => this.say(`${spec.instanceId}: ${err.message}`));
    return child;
  }

  private onExit(child: ChildInfo, proc: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (child.proc !== proc) return;
    child.proc = null;
    child.pid = null;
    child.lastExit = { code, signal };
    if (this.stopping || this.held.has(child.spec.instanceId)) {
      child.state = 'stopped';
      return;
    }
    const ranMs = Date.now() - child.startedAtMs;
    if (ranMs > STABLE_AFTER_MS) child.restarts = 0;
    child.restarts++;
    const delay = Math.round(backoffDelayMs({ ...RESTART_BACKOFF, capMs: this.opts.restartBackoffMaxMs ?? RESTART_BACKOFF.capMs, equalJitter: true }, child.restarts, Math.random));
    child.state = 'backoff';
    this.say(`${child.spec.instanceId} exited (${signal ?? `code ${code}`}) after ${ranMs} ms; restarting in ${delay} ms`);
    const t = setTimeout(() => {
      this.restartTimers.delete(t);
      if (this.stopping) return;
      this.opts.beforeRestart?.(child.spec);
      this.spawn(child.spec);
    }, delay);
    this.restartTimers.add(t);
  }

  /** Resolves when the instance reports its port. */
  waitListening(child: ChildInfo, timeoutMs: number): Promise<ChildInfo> {
    if (child.state === 'running' && child.port) return Promise.resolve(child);
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => reject(new Error(`${child.spec.instanceId} did not start listening within ${timeoutMs} ms`)), timeoutMs);
      const list = this.listeners.get(child.spec.instanceId) ?? [];
      list.push((c) => {
        clearTimeout(timer);
        resolvePromise(c);
      });
      this.listeners.set(child.spec.instanceId, list);
    });
  }

  /** Polls the registry until every id is registered and passing. */
  async waitPassing(ids: string[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let missing = ids;
    while (Date.now() < deadline) {
      try {
        const res = await fetch(`${this.controlUrl}/api/registry/instances`, { signal: AbortSignal.timeout(2000) });
        const body = (await res.json()) as { items: Array<{ id: string; status: string }> };
        const passing = new Set(body.items.filter((i) => i.status === 'passing').map((i) => i.id));
        missing = ids.filter((id) => !passing.has(id));
        if (missing.length === 0) return;
      } catch {
        /* control plane restarting: keep polling */
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`not passing within ${timeoutMs} ms: ${missing.join(', ')}`);
  }

  /** Sends a signal to one instance (tests and chaos). */
  signal(instanceId: string, sig: NodeJS.Signals): number {
    const c = this.children.get(instanceId);
    if (!c?.proc || c.pid === null) throw new Error(`${instanceId} is not running`);
    process.kill(c.pid, sig);
    return c.pid;
  }

  /** Pauses (SIGSTOP) or resumes (SIGCONT) an instance: a hung process, for tests and chaos. */
  pause(instanceId: string): void {
    this.signal(instanceId, 'SIGSTOP');
  }
  resume(instanceId: string): void {
    this.signal(instanceId, 'SIGCONT');
  }

  /** Stops one instance gracefully and keeps it down (an outage, for tests and chaos). */
  async hold(instanceId: string, graceMs = 5000): Promise<void> {
    const c = this.children.get(instanceId);
    if (!c) throw new Error(`unknown instance ${instanceId}`);
    this.held.add(instanceId);
    await this.stopOne(c, graceMs);
  }

  /** Starts a held instance again. */
  async unhold(instanceId: string, timeoutMs = 30_000): Promise<ChildInfo> {
    const c = this.children.get(instanceId);
    if (!c || !this.held.delete(instanceId)) throw new Error(`${instanceId} is not held`);
    this.spawn(c.spec);
    return this.waitListening(c, timeoutMs);
  }

  /** Resolves when the instance has been restarted and reports listening again. */
  async waitRestarted(instanceId: string, oldPid: number, timeoutMs: number): Promise<ChildInfo> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const c = this.children.get(instanceId);
      if (c && c.pid !== null && c.pid !== oldPid && c.state === 'running') return c;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`${instanceId} was not restarted within ${timeoutMs} ms`);
  }

  /** Stops everything in reverse start order: services first, the control plane last. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const t of this.restartTimers) clearTimeout(t);
    const total = this.opts.stopTimeoutMs ?? 9000;
    const services = [...this.children.values()].filter((c) => c.spec.service !== 'control-plane').reverse();
    const cp = [...this.children.values()].filter((c) => c.spec.service === 'control-plane');
    await Promise.all(services.map((c) => this.stopOne(c, Math.round(total * 0.75))));
    await Promise.all(cp.map((c) => this.stopOne(c, Math.round(total * 0.2))));
  }

  private stopOne(c: ChildInfo, graceMs: number): Promise<void> {
    const proc = c.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
    return new Promise((done) => {
      const timer = setTimeout(() => {
        this.say(`${c.spec.instanceId} did not stop within ${graceMs} ms; killing it`);
        proc.kill('SIGKILL');
      }, graceMs);
      proc.once('exit', () => {
        clearTimeout(timer);
        done();
      });
      // A paused process cannot act on SIGTERM: resume it first.
      proc.kill('SIGCONT');
      proc.kill('SIGTERM');
    });
  }
}
