/**
 * Keeps the mesh configuration in `<data dir>/mesh-config.json`. Every change is written
 * before it is acknowledged, atomically and durably: a temporary file, fsync, rename, fsync of
 * the directory — a crash leaves either the old file or the new one, never half of one.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Snapshot } from './store.js';

export const MESH_CONFIG_FILE = 'mesh-config.json';

export class MeshConfigFile {
  readonly path: string;

  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, MESH_CONFIG_FILE);
  }

  load(): Snapshot | null {
    if (!existsSync(this.path)) return null;
    let snap: Snapshot;
    try {
      snap = JSON.parse(readFileSync(this.path, 'utf8')) as Snapshot;
    } catch (err) {
      throw new Error(`the mesh configuration file ${this.path} is unreadable (${String(err)}); move it away to start with an empty configuration`);
    }
    if (snap?.format !== 1 || typeof snap.version !== 'number' || !Array.isArray(snap.resources) || !Array.isArray(snap.status) || !Array.isArray(snap.acks)) {
      throw new Error(`the mesh configuration file ${this.path} has an unexpected shape; move it away to start with an empty configuration`);
    }
    return snap;
  }

  save(snap: Snapshot): void {
    const tmp = `${this.path}.${process.pid}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, JSON.stringify(snap));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    const dirFd = openSync(this.dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  }
}
