/**
 * The mesh configuration shell: the store plus persistence, the configuration directory, the
 * services the registry knows, and the waiters of watching data planes (woken at once by a
 * change, so a new version reaches every data plane well within a second).
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { mesh } from '@concord/core';
import { type ConfigOf, type Logger, stringVar } from '@concord/platform';
import type { Registry } from '../registry/registry.js';
import { ConfigDirWatcher, readConfigDir } from './config-dir.js';
import { type ParsedDocument, type StreamError, parseStream } from './parse.js';
import { MeshConfigFile } from './persist.js';
import { type ApplyResult, MeshConfigStore, type RemoveResult, type Snapshot } from './store.js';
import type { Kind } from './validate.js';

/** The control plane's mesh configuration variables. */
export const meshConfigSchema = {
  /** A directory of Istio YAML files applied at start and on every edit (default: none). */
  meshConfigDir: stringVar('CONCORD_MESH_CONFIG_DIR', ''),
  /** Services a host may name before they have registered (comma-separated). */
  meshKnownHosts: stringVar(
    'CONCORD_MESH_KNOWN_HOSTS',
    '',
    /^[a-z0-9-]{1,63}(,[a-z0-9-]{1,63})*$/,
    'a comma-separated list of service names, e.g. "order,payment"',
  ),
};
export type MeshConfigSettings = ConfigOf<typeof meshConfigSchema>;

const MAX_WAITERS = 10_000;
const FILE_SOURCE = 'file:';
const ACK_WRITE_DELAY_MS = 200;

export class MeshConfigService {
  readonly store = new MeshConfigStore();
  private readonly file: MeshConfigFile | null;
  private readonly extraHosts: ReadonlySet<string>;
  private readonly waiters = new Set<() => void>();
  private readonly dir: string | null;
  private dirWatcher: ConfigDirWatcher | null = null;
  private lastDigest: string | null = null;
  /** Known services when the directory was last rejected: a newly registered one may fix it. */
  private dirRejectedWith: string | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private ackTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly opts: {
      registry: Registry;
      dataDir: string | null;
      log: Logger;
      settings: MeshConfigSettings;
      now?: () => number;
    },
  ) {
    this.extraHosts = new Set(opts.settings.meshKnownHosts ? opts.settings.meshKnownHosts.split(',') : []);
    this.file = opts.dataDir ? new MeshConfigFile(opts.dataDir) : null;
    const snap = this.file?.load();
    if (snap) {
      const issues = this.store.restore(snap);
      opts.log.info({ version: snap.version, resources: snap.resources.length }, 'mesh configuration restored from disk');
      if (issues.length > 0) {
        opts.log.error(
          { issues: issues.map((i) => `${i.resource}: ${i.field}: ${i.message}`) },
          'the restored mesh configuration no longer validates; it stays in force until it is changed',
        );
      }
    }
    this.dir = opts.settings.meshConfigDir ? resolve(opts.settings.meshConfigDir) : null;
    if (this.dir && !(existsSync(this.dir) && statSync(this.dir).isDirectory())) {
      throw new Error(`CONCORD_MESH_CONFIG_DIR=${JSON.stringify(opts.settings.meshConfigDir)} is not a directory`);
    }
  }

  private now(): number {
    return this.opts.now ? this.opts.now() : Date.now();
  }

  /** Registered service names, plus CONCORD_MESH_KNOWN_HOSTS. */
  knownHosts(): Set<string> {
    return new Set([...Object.keys(this.opts.registry.catalog.serviceNames()), ...this.extraHosts]);
  }

  /** Loads the configuration directory (if any) and starts watching it and the registry. */
  start(): void {
    if (!this.dir) return;
    const dir = this.dir;
    this.loadDir(true);
    this.dirWatcher = new ConfigDirWatcher(dir, () => this.loadDir(false));
    // A directory rejected because a service had not registered yet is retried when one does.
    this.unsubscribe = this.opts.registry.onChange(() => {
      if (this.dirRejectedWith === null || this.retryTimer) return;
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        if (this.dirRejectedWith !== null && this.dirRejectedWith !== [...this.knownHosts()].sort().join(',')) this.loadDir(true);
      }, 50);
      this.retryTimer.unref();
    });
  }

  private loadDir(force: boolean): void {
    if (!this.dir) return;
    const read = readConfigDir(this.dir);
    if (!force && read.digest === this.lastDigest) return;
    this.lastDigest = read.digest;
    const r = this.submit({ source: 'file', documents: read.documents, streamErrors: read.errors, prune: (res) => res.source.startsWith(FILE_SOURCE) });
    if (r.ok) {
      this.dirRejectedWith = null;
      if (r.changed)
        this.opts.log.info(
          {
            version: r.version,
            dir: this.dir,
            applied: r.applied.filter((a) => a.action !== 'unchanged').map((a) => `${a.kind}/${a.name}`),
            deleted: r.deleted.map((d) => `${d.kind}/${d.name}`),
          },
          'mesh configuration directory applied',
        );
    } else {
      this.dirRejectedWith = [...this.knownHosts()].sort().join(',');
      this.opts.log.warn(
        { dir: this.dir, version: r.version, errors: r.errors.map((e) => `${e.source ?? ''} ${e.path}: ${e.message}`) },
        'mesh configuration directory rejected; the last good configuration stays in force',
      );
    }
  }

  /** Applies a YAML stream from the API or the CLI. */
  applyYaml(text: string, source: 'api' | 'cli'): ApplyResult {
    const parsed = parseStream(text, source);
    if (parsed.ok && parsed.documents.length === 0) {
      // As kubectl's "no objects passed to apply": surely not what was meant.
      const message = 'the stream holds no resources (only comments or empty documents)';
      return { ok: false, version: this.store.version, errors: [{ path: 'stream', message, resource: 'stream', field: '' }], rejected: [] };
    }
    return this.submit({ source, documents: parsed.documents, streamErrors: parsed.ok ? [] : parsed.errors });
  }

  private submit(sub: {
    source: string;
    documents: ParsedDocument[];
    streamErrors: StreamError[];
    prune?: Parameters<MeshConfigStore['apply']>[0]['prune'];
  }): ApplyResult {
    const before = this.store.snapshot();
    const r = this.store.apply(sub, this.knownHosts(), this.now());
    // Rejections are recorded (status) and persisted too; a failed write undoes the change.
    this.persist(before);
    if (r.ok && r.changed) this.wake();
    return r;
  }

  remove(kind: Kind, name: string): RemoveResult {
    const before = this.store.snapshot();
    const r = this.store.remove(kind, name);
    if (r.ok) {
      this.persist(before);
      this.wake();
    }
    return r;
  }

  /** Records which version a data plane runs. Acks are soft state: their writes are coalesced. */
  ack(instanceId: string, version: number, error: string | undefined, tracing?: mesh.TracingReport): void {
    this.store.ack(instanceId, version, error, this.now(), tracing);
    if (!this.file || this.ackTimer) return;
    this.ackTimer = setTimeout(() => {
      this.ackTimer = null;
      this.saveQuietly();
    }, ACK_WRITE_DELAY_MS);
    this.ackTimer.unref();
  }

  private saveQuietly(): void {
    try {
      this.file?.save(this.store.snapshot());
    } catch (err) {
      this.opts.log.warn({ err }, 'could not persist mesh configuration acks');
    }
  }

  /** Writes the store, or restores `before` and throws: nothing is acknowledged that is not on disk. */
  private persist(before: Snapshot): void {
    if (!this.file) return;
    try {
      this.file.save(this.store.snapshot());
    } catch (err) {
      this.store.restore(before);
      this.opts.log.error({ err }, 'could not write the mesh configuration; the change is undone');
      throw err;
    }
  }

  private wake(): void {
    const all = [...this.waiters];
    this.waiters.clear();
    for (const wake of all) wake();
  }

  /**
   * Long poll: resolves at once when the version in force differs from `version` (newer, or
   * older after the control plane lost its state), else on the next change, after `waitMs`,
   * or when the caller goes away.
   */
  async waitForChange(version: number, waitMs: number, signal: AbortSignal): Promise<void> {
    if (this.store.version !== version || signal.aborted) return;
    if (this.waiters.size >= MAX_WAITERS) return; // answer at once rather than grow without bound
    await new Promise<void>((done) => {
      const finish = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', finish);
        this.waiters.delete(finish);
        done();
      };
      const timer = setTimeout(finish, waitMs);
      signal.addEventListener('abort', finish, { once: true });
      this.waiters.add(finish);
    });
  }

  /** Watchers waiting for a change. */
  get waiting(): number {
    return this.waiters.size;
  }

  /** Where this process keeps the configuration (for logs). */
  get path(): string | null {
    return this.file?.path ?? null;
  }

  get configDir(): string | null {
    return this.dir;
  }

  close(): void {
    this.dirWatcher?.close();
    this.unsubscribe?.();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.ackTimer) {
      clearTimeout(this.ackTimer);
      this.ackTimer = null;
      this.saveQuietly();
    }
    this.wake();
  }
}
