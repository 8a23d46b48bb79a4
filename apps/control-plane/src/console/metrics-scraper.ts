/**
 * Scrapes `/metrics` of every registered instance at a fixed interval and feeds the traffic
 * model (the pure part: scrape.ts, traffic.ts). Over https with the control plane's workload
 * certificate when the instance's health check is https (it holds an identity, so it may run
 * under STRICT mTLS), over plain http otherwise. Bounded: instances per round, parallel
 * scrapes, bytes and time per scrape; a round never overlaps the previous one.
 */
import { Agent, type Logger, request } from '@concord/platform';
import type { Registry } from '../registry/registry.js';
import { summarizeScrape } from './scrape.js';
import { type RoundInput, type Tick, TrafficModel } from './traffic.js';

export interface ScraperOptions {
  registry: Registry;
  log: Logger;
  intervalMs?: number;
  timeoutMs?: number;
  maxInstances?: number;
  maxBytes?: number;
  parallel?: number;
  now?: () => number;
}

export interface ScrapeTarget {
  instanceId: string;
  service: string;
  url: string;
  tls: boolean;
  registeredAtMs: number;
}

const DEFAULTS = { intervalMs: 2000, timeoutMs: 1500, maxInstances: 256, maxBytes: 8 * 1_048_576, parallel: 16 };

export class MetricsScraper {
  readonly model: TrafficModel;
  private readonly agent = new Agent({ connections: 1, keepAliveTimeout: 10_000, connect: { timeout: 1000 } });
  private tlsAgent: Agent | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private closed = false;
  private readonly startedAtMs: number;
  private readonly listeners = new Set<(tick: Tick) => void>();
  private readonly o: typeof DEFAULTS;
  private lastErrorLogMs = 0;

  constructor(private readonly opts: ScraperOptions) {
    this.o = {
      intervalMs: opts.intervalMs ?? DEFAULTS.intervalMs,
      timeoutMs: opts.timeoutMs ?? DEFAULTS.timeoutMs,
      maxInstances: opts.maxInstances ?? DEFAULTS.maxInstances,
      maxBytes: opts.maxBytes ?? DEFAULTS.maxBytes,
      parallel: opts.parallel ?? DEFAULTS.parallel,
    };
    this.model = new TrafficModel({
      capacity: Math.ceil(600_000 / this.o.intervalMs),
      maxKeys: 2000,
      maxInstances: this.o.maxInstances,
      intervalMs: this.o.intervalMs,
    });
    this.startedAtMs = this.now();
  }

  private now(): number {
    return this.opts.now ? this.opts.now() : Date.now();
  }

  /** Installs (or rotates) the client certificate used for https targets. */
  setTls(material: { keyPem: string; certPem: string; caPem: string }): void {
    const old = this.tlsAgent;
    this.tlsAgent = new Agent({
      connections: 1,
      keepAliveTimeout: 10_000,
      connect: { timeout: 1000, key: material.keyPem, cert: material.certPem, ca: material.caPem, checkServerIdentity: () => undefined },
    });
    if (old) void old.close().catch(() => {});
  }

  /** Called after every round, with the tick it produced. */
  onRound(fn: (tick: Tick) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  start(): void {
    if (this.timer || this.closed) return;
    this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      const began = this.now();
      void this.round().finally(() => this.schedule(Math.max(0, this.o.intervalMs - (this.now() - began))));
    }, delayMs);
    this.timer.unref();
  }

  /** The instances to scrape now: every registered one, up to the bound, in id order. */
  targets(): ScrapeTarget[] {
    return this.opts.registry.catalog
      .all()
      .slice()
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .slice(0, this.o.maxInstances)
      .map((s) => {
        const tls = s.checks.some((c) => c.http?.startsWith('https:')) && this.tlsAgent !== null;
        const host = s.address.includes(':') ? `[${s.address}]` : s.address;
        return { instanceId: s.id, service: s.name, url: `${tls ? 'https' : 'http'}://${host}:${s.port}/metrics`, tls, registeredAtMs: s.registeredAtMs };
      });
  }

  /** One round: scrape every target (bounded parallelism), then record a tick. */
  async round(): Promise<Tick | null> {
    if (this.running || this.closed) return null;
    this.running = true;
    try {
      const targets = this.targets();
      const results: RoundInput[] = new Array(targets.length);
      let next = 0;
      const worker = async () => {
        for (;;) {
          const i = next++;
          const t = targets[i];
          if (!t) return;
          results[i] = await this.scrapeOne(t);
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.o.parallel, targets.length) }, worker));
      if (this.closed) return null;
      const tick = this.model.record(this.now(), results);
      for (const fn of this.listeners) {
        try {
          fn(tick);
        } catch (err) {
          this.opts.log.error({ err }, 'console round listener failed');
        }
      }
      return tick;
    } finally {
      this.running = false;
    }
  }

  private async scrapeOne(t: ScrapeTarget): Promise<RoundInput> {
    const base = { instanceId: t.instanceId, service: t.service, fromZero: t.registeredAtMs >= this.startedAtMs };
    try {
      const res = await request(t.url, {
        method: 'GET',
        headers: { accept: 'text/plain;version=0.0.4', 'user-agent': 'concord-console-scraper' },
        dispatcher: t.tls ? (this.tlsAgent as Agent) : this.agent,
        signal: AbortSignal.timeout(this.o.timeoutMs),
        headersTimeout: this.o.timeoutMs,
        bodyTimeout: this.o.timeoutMs,
      });
      if (res.statusCode !== 200) {
        await res.body.dump();
        return { ...base, scrape: null, error: `HTTP ${res.statusCode}` };
      }
      const chunks: Buffer[] = [];
      let bytes = 0;
      for await (const chunk of res.body) {
        bytes += (chunk as Buffer).length;
        if (bytes > this.o.maxBytes) {
          res.body.destroy();
          return { ...base, scrape: null, error: `metrics larger than ${this.o.maxBytes} bytes` };
        }
        chunks.push(chunk as Buffer);
      }
      return { ...base, scrape: summarizeScrape(Buffer.concat(chunks).toString('utf8')) };
    } catch (err) {
      const e = err as Error & { code?: string };
      const error = e.name === 'TimeoutError' ? `timed out after ${this.o.timeoutMs} ms` : (e.code ?? e.message);
      if (this.now() - this.lastErrorLogMs > 30_000) {
        this.lastErrorLogMs = this.now();
        this.opts.log.debug({ instance: t.instanceId, url: t.url, error }, 'metrics scrape failed');
      }
      return { ...base, scrape: null, error };
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.listeners.clear();
    void this.agent.close().catch(() => {});
    void this.tlsAgent?.close().catch(() => {});
  }
}
