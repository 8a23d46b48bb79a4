/**
 * Registry client: registers this instance in the control plane (Consul HTTP API), watches the
 * services it calls with blocking queries, and picks among passing instances.
 *
 * A control-plane restart is survived twice over: the control plane persists registrations,
 * and this client watches its own service and registers again when its entry is missing.
 */
import { backoffDelayMs, type Picker, randomPicker, roundRobinPicker } from '@concord/core';
import { Agent, request } from '../http-client/undici.js';
import type { Logger } from '../service-kit/logger.js';

export interface CheckDefinition {
  CheckID?: string;
  Name?: string;
  HTTP?: string;
  Interval?: string;
  Timeout?: string;
  TTL?: string;
  DeregisterCriticalServiceAfter?: string;
  FailuresBeforeCritical?: number;
}

export interface Registration {
  ID: string;
  Name: string;
  Address: string;
  Port: number;
  Tags?: string[];
  Meta?: Record<string, string>;
  Check?: CheckDefinition;
  Checks?: CheckDefinition[];
}

export interface Instance {
  id: string;
  service: string;
  address: string;
  port: number;
  tags: string[];
  meta: Record<string, string>;
  /** `http://address:port` */
  origin: string;
  /** Aggregate of the instance's checks, Consul's way. */
  health: 'passing' | 'warning' | 'critical';
}

/**
 * Below this share of passing instances the watch routes to every registered instance
 * (Envoy's "panic threshold"): an overloaded fleet whose checks time out keeps serving
 * instead of answering "no instances" — dead instances still fail fast on connect.
 */
export const PANIC_THRESHOLD = 0.5;

interface HealthEntry {
  Service: { ID: string; Service: string; Address: string; Port: number; Tags: string[] | null; Meta: Record<string, string> | null };
  Checks: Array<{ Status: string; ServiceID: string }>;
}

type Listener = (instances: readonly Instance[]) => void;

const WAIT_S = 30;

export class ServiceWatch {
  /** Passing instances. */
  instances: readonly Instance[] = [];
  /** Every registered instance, whatever its health. */
  all: readonly Instance[] = [];
  /** What callers should balance over: passing ones, or all of them in panic mode. */
  routable: readonly Instance[] = [];
  /** True once the first answer arrived. */
  loaded = false;
  private index = 0;
  private listeners = new Set<Listener>();
  private abort = new AbortController();
  private firstLoad: Promise<void>;
  private resolveFirst!: () => void;
  private rr: Picker<Instance> = roundRobinPicker();
  private rnd: Picker<Instance> = randomPicker(Math.random);

  constructor(
    private readonly client: RegistryClient,
    readonly service: string,
    private readonly passingOnly: boolean,
  ) {
    this.firstLoad = new Promise((r) => {
      this.resolveFirst = r;
    });
    void this.loop();
  }

  onChange(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Resolves once the first answer arrived (or after timeoutMs). */
  async ready(timeoutMs = 5000): Promise<void> {
    await Promise.race([this.firstLoad, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
  }

  pick(strategy: 'round-robin' | 'random' = 'round-robin'): Instance | undefined {
    return (strategy === 'random' ? this.rnd : this.rr).pick(this.routable);
  }

  close(): void {
    this.abort.abort();
    this.listeners.clear();
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (!this.abort.signal.aborted) {
      try {
        // Always every instance: health is filtered here, so panic mode can see the whole fleet.
        const q = `index=${this.index}&wait=${WAIT_S}s`;
        const res = await request(`${this.client.controlUrl}/v1/health/service/${encodeURIComponent(this.service)}?${q}`, {
          dispatcher: this.client.agent,
          signal: this.abort.signal,
          headersTimeout: (WAIT_S + 10) * 1000,
          bodyTimeout: (WAIT_S + 10) * 1000,
        });
        if (res.statusCode !== 200) {
          await res.body.dump();
          throw new Error(`registry answered ${res.statusCode}`);
        }
        const entries = (await res.body.json()) as HealthEntry[];
        const idx = Number(res.headers['x-consul-index']);
        // Consul's rule: an index that goes backwards (a restarted server) resets the watch.
        this.index = Number.isFinite(idx) && idx > 0 ? (idx < this.index ? 0 : idx) : 0;
        failures = 0;
        this.update(entries);
      } catch (err) {
        if (this.abort.signal.aborted) return;
        failures++;
        this.index = 0;
        if (failures === 1 || failures % 20 === 0) this.client.log.warn({ err: String(err), service: this.service }, 'registry watch failed; retrying');
        await sleep(backoffDelayMs({ baseMs: 50, capMs: 1000, equalJitter: true }, failures, Math.random), this.abort.signal);
      }
    }
  }

  private update(entries: HealthEntry[]): void {
    const all = entries.map((e) => ({
      id: e.Service.ID,
      service: e.Service.Service,
      address: e.Service.Address,
      port: e.Service.Port,
      tags: e.Service.Tags ?? [],
      meta: e.Service.Meta ?? {},
      origin: `http://${e.Service.Address.includes(':') ? `[${e.Service.Address}]` : e.Service.Address}:${e.Service.Port}`,
      health: aggregate(e.Checks),
    }));
    all.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const passing = all.filter((i) => i.health === 'passing');
    this.all = all;
    this.instances = passing;
    this.routable = passing.length > 0 && passing.length >= all.length * PANIC_THRESHOLD ? passing : all;
    const next = this.passingOnly ? passing : all;
    if (!this.loaded) {
      this.loaded = true;
      this.resolveFirst();
    }
    for (const fn of this.listeners) fn(next);
  }
}

function aggregate(checks: ReadonlyArray<{ Status: string }>): Instance['health'] {
  if (checks.some((c) => c.Status === 'critical')) return 'critical';
  if (checks.some((c) => c.Status === 'warning')) return 'warning';
  return 'passing';
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}

export class RegistryClient {
  readonly agent: Agent;
  private watches = new Map<string, ServiceWatch>();
  private self: Registration | null = null;
  private selfWatch: ServiceWatch | null = null;
  private reregistering = false;

  constructor(readonly opts: { controlUrl: string; log: Logger }) {
    this.agent = new Agent({ connections: 16, keepAliveTimeout: 60_000, pipelining: 0 });
  }

  get controlUrl(): string {
    return this.opts.controlUrl;
  }
  get log(): Logger {
    return this.opts.log;
  }

  /** Passing instances of a service, watched from the first call on. */
  watch(service: string): ServiceWatch {
    let w = this.watches.get(service);
    if (!w) {
      w = new ServiceWatch(this, service, true);
      this.watches.set(service, w);
    }
    return w;
  }

  instances(service: string): readonly Instance[] {
    return this.watch(service).instances;
  }

  async register(reg: Registration, signal?: AbortSignal): Promise<void> {
    const res = await request(`${this.controlUrl}/v1/agent/service/register`, {
      method: 'PUT',
      body: JSON.stringify(reg),
      headers: { 'content-type': 'application/json' },
      dispatcher: this.agent,
      signal,
      headersTimeout: 5000,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`register answered ${res.statusCode}: ${text.slice(0, 300)}`);
  }

  async deregister(id: string, timeoutMs = 2000): Promise<void> {
    const res = await request(`${this.controlUrl}/v1/agent/service/deregister/${encodeURIComponent(id)}`, {
      method: 'PUT',
      dispatcher: this.agent,
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.body.dump();
    if (res.statusCode !== 200 && res.statusCode !== 404) throw new Error(`deregister answered ${res.statusCode}`);
  }

  /**
   * Registers this instance, retrying with backoff while the control plane is unreachable
   * (up to maxWaitMs), then keeps the registration alive across control-plane restarts.
   */
  async registerSelf(reg: Registration, maxWaitMs = 30_000): Promise<void> {
    const deadline = Date.now() + maxWaitMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.register(reg);
        break;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`could not register with the control plane at ${this.controlUrl}: ${String(err)}`);
        if (attempt === 1) this.log.warn({ err: String(err) }, 'control plane not reachable yet; retrying registration');
        await sleep(backoffDelayMs({ baseMs: 50, capMs: 1000, equalJitter: true }, attempt, Math.random));
      }
    }
    this.self = reg;
    this.selfWatch = new ServiceWatch(this, reg.Name, false);
    this.selfWatch.onChange((all) => {
      if (!this.self || this.reregistering) return;
      // Present under its id is not enough: a control plane restored from an older registry file
      // holds the address of this instance's previous life, whose checks never pass again.
      const mine = all.find((i) => i.id === reg.ID);
      if (mine && mine.address === reg.Address && mine.port === reg.Port) return;
      this.reregistering = true;
      this.log.warn({ registered: mine ? `${mine.address}:${mine.port}` : null }, 'own registration missing from the registry, or stale; registering again');
      this.register(reg)
        .catch((err) => this.log.warn({ err: String(err) }, 're-registration failed'))
        .finally(() => {
          this.reregistering = false;
        });
    });
  }

  async deregisterSelf(timeoutMs = 2000): Promise<void> {
    const self = this.self;
    this.self = null;
    this.selfWatch?.close();
    if (self) await this.deregister(self.ID, timeoutMs);
  }

  close(): void {
    this.selfWatch?.close();
    for (const w of this.watches.values()) w.close();
    this.watches.clear();
    void this.agent.close().catch(() => {});
  }
}
