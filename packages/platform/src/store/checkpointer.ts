/**
 * SQLite WAL checkpoints on a thread of their own.
 *
 * In WAL mode a commit appends pages to the log; a checkpoint copies them back into the database
 * file and syncs it. By default SQLite runs the checkpoint inside the commit that takes the log
 * past 1,000 pages, so one commit in every few dozen also copies ~4 MiB and waits for an fsync,
 * on the thread that commits: a service's event loop. Profiled under load in the order
 * process, commits averaged 1.2 ms of wall time against ~0.3 ms of CPU (2026-11-27,
 * CONCORD_SQL_PROFILE=1).
 *
 * Here a worker thread with its own connection runs a PASSIVE checkpoint every `everyMs`: it
 * never waits for a lock (a checkpoint that finds one taken tries again at the next tick) and
 * never blocks a writer. Once it has copied everything, the next write transaction starts the
 * log again from its beginning, so the log stays small. The service's connection keeps a
 * checkpoint of its own past BACKSTOP_PAGES, for when the worker cannot keep up or is gone.
 * Durability is unchanged: a checkpoint only moves committed pages; a process killed at any
 * point recovers from the log.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** How often the worker checkpoints. */
export const CHECKPOINT_EVERY_MS = 200;
/** Commits of a store before its worker starts. */
export const START_AFTER_COMMITS = 500;
/** The service's own connection checkpoints (inside a commit) only once the log holds this many pages. */
export const BACKSTOP_PAGES = 4_000;
/** The worker's heap: it holds a connection and a timer, nothing else. */
const WORKER_HEAP_MB = 8;
/** How long closing waits for the worker's last checkpoint before it is terminated. */
const CLOSE_TIMEOUT_MS = 2_000;

/** The worker (CommonJS, evaluated): open the database, checkpoint on a timer, stop when told. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
db.pragma('busy_timeout = 0');
let reported = false;
const checkpoint = () => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (err) {
    // Busy (another connection checkpoints, or the log restarts): the next tick tries again.
    // Anything else (a disk error) is told once; the next ticks try again all the same.
    if (err.code !== 'SQLITE_BUSY' && !reported) {
      reported = true;
      parentPort.postMessage({ error: String(err.message) });
    }
  }
};
const timer = setInterval(checkpoint, workerData.everyMs);
parentPort.on('message', (m) => {
  if (m !== 'close') return;
  // No last checkpoint: the service's connection, closed last, checkpoints the log itself.
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

export interface CheckpointerOptions {
  /** The database file (in WAL mode). */
  path: string;
  everyMs?: number;
  /** Commits before the worker starts (0: at once); see START_AFTER_COMMITS. */
  startAfterCommits?: number;
  /** The worker started: the service's connection can leave checkpoints to it. */
  onStart?: () => void;
  /** A checkpoint failed other than busy (told once per worker). */
  onError?: (message: string) => void;
  /** The worker stopped on its own (it could not open the database, or died): checkpoints go back to the service's connection. */
  onStopped: (err: Error) => void;
}

/**
 * The checkpoint worker of one database, started by its store's START_AFTER_COMMITS-th commit:
 * a store that rarely writes (the user service between registrations) never pays the worker's
 * ~9 MiB.
 */
export class Checkpointer {
  private worker: Worker | null = null;
  private exited: Promise<void> = Promise.resolve();
  private commits = 0;
  private closing = false;

  constructor(private readonly opts: CheckpointerOptions) {
    if ((opts.startAfterCommits ?? START_AFTER_COMMITS) === 0) this.start();
  }

  /** Counts a commit of the store; the worker starts at the threshold. */
  committed(): void {
    if (++this.commits === (this.opts.startAfterCommits ?? START_AFTER_COMMITS)) this.start();
  }

  private start(): void {
    if (this.closing || this.worker) return;
    try {
      this.spawn();
    } catch (err) {
      // No thread could be made (or the driver found): checkpoints stay with the commits.
      this.worker = null;
      this.opts.onStopped(err as Error);
    }
  }

  private spawn(): void {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { driver, path: this.opts.path, everyMs: this.opts.everyMs ?? CHECKPOINT_EVERY_MS },
      resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB, maxYoungGenerationSizeMb: 1 },
      stdout: false,
      stderr: false,
    });
    // It never holds the process open: a process that ends mid-checkpoint leaves a valid log.
    worker.unref();
    this.worker = worker;
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    let failure: Error | null = null;
    worker.on('error', (err) => {
      failure = err;
    });
    worker.on('message', (m: { error?: string }) => {
      if (typeof m?.error === 'string') this.opts.onError?.(m.error);
    });
    worker.once('exit', (code) => {
      if (this.closing) return;
      this.worker = null;
      this.opts.onStopped(failure ?? new Error(`the checkpoint worker exited with code ${code}`));
    });
    this.opts.onStart?.();
  }

  /** The worker ends (terminated if it takes longer than CLOSE_TIMEOUT_MS). */
  async close(): Promise<void> {
    if (this.closing) return this.exited;
    this.closing = true;
    const worker = this.worker;
    if (!worker) return;
    worker.postMessage('close');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), CLOSE_TIMEOUT_MS);
    });
    if ((await Promise.race([this.exited, late])) === 'late') await worker.terminate();
    clearTimeout(timer);
  }
}
