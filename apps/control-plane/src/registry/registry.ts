/**
 * The registry shell: the catalog plus its HTTP checks, TTL expiry, reaping, persistence and
 * the waiters of blocking queries.
 */
import type { Logger } from '@concord/platform';
import { Catalog, type CheckStatus, type ServiceSpec } from './catalog.js';
import { HttpCheckRunner } from './checks.js';
import { SnapshotFile } from './persist.js';

const MAX_WAITERS = 10_000;

export class Registry {
  readonly catalog = new Catalog();
  readonly runner: HttpCheckRunner;
  private readonly file: SnapshotFile | null;
  private readonly waiters = new Map<string, Set<() => void>>();
  private waiterCount = 0;
  private readonly tick: NodeJS.Timeout;
  private readonly listeners = new Set<(names: string[]) => void>();

  constructor(private readonly opts: { dataDir: string | null; log: Logger; now?: () => number; sweepMs?: number }) {
    this.runner = new HttpCheckRunner((checkId, r) => this.setCheck(checkId, r.status, r.output, r.tolerable));
    this.file = opts.dataDir ? new SnapshotFile(opts.dataDir, () => this.catalog.snapshot()) : null;
    const snap = this.file?.load();
    if (snap) {
      this.catalog.restore(snap, this.now());
      opts.log.info({ instances: snap.services.length }, 'registry restored from disk; re-running checks');
    }
    this.runner.sync(this.allChecks());
    this.tick = setInterval(() => this.sweep(), opts.sweepMs ?? 250);
    this.tick.unref();
  }

  private now(): number {
    return this.opts.now ? this.opts.now() : Date.now();
  }

  private allChecks() {
    return this.catalog.all().flatMap((s) => s.checks);
  }

  /** Called with the names of services whose index moved. */
  onChange(fn: (names: string[]) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private changed(names: string[]): void {
    if (names.length === 0) return;
    this.file?.schedule();
    for (const name of new Set(names)) {
      const set = this.waiters.get(name);
      if (set) {
        this.waiters.delete(name);
        this.waiterCount -= set.size;
        for (const wake of set) wake();
      }
    }
    for (const fn of this.listeners) fn(names);
  }

  register(spec: ServiceSpec): void {
    const names = this.catalog.register(spec, this.now());
    this.runner.sync(this.allChecks());
    this.changed(names);
  }

  deregister(id: string): boolean {
    const names = this.catalog.deregister(id);
    this.runner.sync(this.allChecks());
    this.changed(names);
    return names.length > 0;
  }

  setCheck(checkId: string, status: CheckStatus, output: string, tolerable = false): boolean {
    if (!this.catalog.hasCheck(checkId)) return false;
    this.changed(this.catalog.updateCheck(checkId, status, output, this.now(), tolerable));
    return true;
  }

  private sweep(): void {
    const now = this.now();
    this.changed(this.catalog.expireTtl(now));
    const gone = this.catalog.reap(now);
    if (gone.length > 0) {
      this.opts.log.info({ instances: gone.map((g) => g.id) }, 'reaped instances critical past DeregisterCriticalServiceAfter');
      this.runner.sync(this.allChecks());
      this.changed(gone.map((g) => g.name));
    }
  }

  /**
   * Blocking query: resolves when the index of `name` exceeds `index`, or after `waitMs`
   * (plus up to waitMs/16 of jitter, as Consul does), or when the caller goes away.
   */
  async waitFor(name: string, index: number, waitMs: number, signal: AbortSignal): Promise<void> {
    if (index <= 0 || this.catalog.indexOf(name) > index) return;
    if (this.waiterCount >= MAX_WAITERS) return; // answer at once rather than grow without bound
    const jitter = Math.random() * (waitMs / 16);
    await new Promise<void>((resolve) => {
      let set = this.waiters.get(name);
      if (!set) {
        set = new Set();
        this.waiters.set(name, set);
      }
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        const s = this.waiters.get(name);
        if (s?.delete(done)) this.waiterCount--;
        done();
      };
      const timer = setTimeout(onAbort, waitMs + jitter);
      signal.addEventListener('abort', onAbort, { once: true });
      set.add(done);
      this.waiterCount++;
    });
  }

  close(): void {
    clearInterval(this.tick);
    this.runner.close();
    this.file?.flush();
    for (const set of this.waiters.values()) for (const wake of set) wake();
    this.waiters.clear();
  }
}
