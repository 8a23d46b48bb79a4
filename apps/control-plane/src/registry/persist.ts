/** Keeps the catalog in `<data dir>/registry.json`, written atomically (temp file + rename). */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Snapshot } from './catalog.js';

export class SnapshotFile {
  readonly path: string;
  private pending: NodeJS.Timeout | null = null;

  constructor(dir: string, private readonly take: () => Snapshot, private readonly delayMs = 20) {
    this.path = join(dir, 'registry.json');
    mkdirSync(dirname(this.path), { recursive: true });
  }

  load(): Snapshot | null {
    if (!existsSync(this.path)) return null;
    try {
      const snap = JSON.parse(readFileSync(this.path, 'utf8')) as Snapshot;
      if (typeof snap.index !== 'number' || !Array.isArray(snap.services)) throw new Error('unexpected shape');
      return snap;
    } catch (err) {
      throw new Error(`the registry file ${this.path} is unreadable (${String(err)}); move it away to start with an empty registry`);
    }
  }

  /** Coalesces bursts of changes into one write. */
  schedule(): void {
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = null;
      this.flush();
    }, this.delayMs);
  }

  flush(): void {
    if (this.pending) {
      clearTimeout(this.pending);
      this.pending = null;
    }
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.take()));
    renameSync(tmp, this.path);
  }
}
