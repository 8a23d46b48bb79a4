/**
 * A configuration directory (CONCORD_MESH_CONFIG_DIR): every `*.yaml` / `*.yml` file in it,
 * read as one change, and watched — `fs.watch` for promptness, a light stat poll in case an
 * event is missed (editors that replace files, a directory that was briefly gone) — so an edit
 * is applied within a second, without a restart.
 */
import { createHash } from 'node:crypto';
import { type FSWatcher, readFileSync, readdirSync, statSync, watch } from 'node:fs';
import { join } from 'node:path';
import { MAX_DOCUMENTS, MAX_STREAM_BYTES, type ParsedDocument, type StreamError, parseStream } from './parse.js';

const MAX_FILES = 200;
const MAX_TOTAL_BYTES = 8 * MAX_STREAM_BYTES;

export interface DirRead {
  documents: ParsedDocument[];
  errors: StreamError[];
  /** Changes whenever a file's name or content does. */
  digest: string;
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && /\.ya?ml$/i.test(e.name) && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
}

export function readConfigDir(dir: string): DirRead {
  const hash = createHash('sha256');
  const documents: ParsedDocument[] = [];
  const errors: StreamError[] = [];
  let names: string[];
  try {
    names = yamlFiles(dir);
  } catch (err) {
    const message = `cannot read the configuration directory: ${(err as Error).message}`;
    return { documents, errors: [{ where: 'stream', source: `file:${dir}`, message }], digest: `error:${message}` };
  }
  if (names.length > MAX_FILES) {
    return {
      documents,
      errors: [{ where: 'stream', source: `file:${dir}`, message: `the directory holds ${names.length} YAML files; the limit is ${MAX_FILES}` }],
      digest: `many:${names.length}`,
    };
  }
  let total = 0;
  for (const name of names) {
    const path = join(dir, name);
    const source = `file:${path}`;
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      // Removed between the listing and the read: the watcher will fire again.
      hash.update(`${name}\0unreadable\0`);
      errors.push({ where: 'stream', source, message: `cannot read: ${(err as Error).message}` });
      continue;
    }
    hash.update(`${name}\0${text}\0`);
    total += Buffer.byteLength(text);
    if (total > MAX_TOTAL_BYTES) {
      errors.push({ where: 'stream', source, message: `the directory's files exceed ${MAX_TOTAL_BYTES} bytes together` });
      break;
    }
    const r = parseStream(text, source);
    documents.push(...r.documents);
    if (!r.ok) errors.push(...r.errors);
  }
  if (documents.length > MAX_DOCUMENTS)
    errors.push({ where: 'stream', source: `file:${dir}`, message: `the directory holds ${documents.length} documents; the limit is ${MAX_DOCUMENTS}` });
  return { documents, errors, digest: hash.digest('hex') };
}

/** A cheap fingerprint (names, sizes, modification times) for the fallback poll. */
function fingerprint(dir: string): string {
  try {
    return yamlFiles(dir)
      .map((n) => {
        const s = statSync(join(dir, n));
        return `${n}:${s.size}:${s.mtimeMs}`;
      })
      .join('|');
  } catch (err) {
    return `error:${(err as NodeJS.ErrnoException).code ?? 'unknown'}`;
  }
}

export class ConfigDirWatcher {
  private watcher: FSWatcher | null = null;
  private debounce: NodeJS.Timeout | null = null;
  private readonly poll: NodeJS.Timeout;
  private last: string;
  private closed = false;
  private readonly trigger: () => void;

  constructor(
    private readonly dir: string,
    private readonly onChange: () => void,
    opts: { debounceMs?: number; pollMs?: number } = {},
  ) {
    const debounceMs = opts.debounceMs ?? 50;
    this.last = fingerprint(dir);
    this.trigger = () => {
      if (this.closed) return;
      if (this.debounce) clearTimeout(this.debounce);
      this.debounce = setTimeout(() => {
        this.debounce = null;
        this.last = fingerprint(this.dir);
        this.onChange();
      }, debounceMs);
    };
    this.arm();
    this.poll = setInterval(() => {
      if (!this.watcher) this.arm();
      if (fingerprint(this.dir) !== this.last) this.trigger();
    }, opts.pollMs ?? 500);
    this.poll.unref();
  }

  private arm(): void {
    try {
      const w = watch(this.dir, { persistent: false }, () => this.trigger());
      w.on('error', () => {
        w.close();
        if (this.watcher === w) this.watcher = null;
        this.trigger();
      });
      this.watcher = w;
    } catch {
      this.watcher = null; // the directory is gone; the poll re-arms when it is back
    }
  }

  close(): void {
    this.closed = true;
    clearInterval(this.poll);
    if (this.debounce) clearTimeout(this.debounce);
    this.watcher?.close();
    this.watcher = null;
  }
}
