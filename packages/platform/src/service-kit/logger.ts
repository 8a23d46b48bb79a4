import { writeSync } from 'node:fs';
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(fields: { service: string; instance: string; version: string }, level: string, sink: LineSink = LineSink.stdout()): Logger {
  return pino(
    {
      level,
      base: { service: fields.service, instance: fields.instance, version: fields.version, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    sink,
  );
}

/** How long one line may wait for a full output (EAGAIN) before lines are dropped instead. */
export const MAX_BLOCKED_WRITE_MS = 1000;
/** The pause between two tries of a full output. */
const BLOCKED_RETRY_MS = 10;

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
const sleepSync = (ms: number): void => void Atomics.wait(sleepCell, 0, 0, ms);

type Write = (fd: number, data: string | Buffer) => number;
const systemWrite: Write = (fd, data) => (typeof data === 'string' ? writeSync(fd, data) : writeSync(fd, data));

/**
 * A log's destination: one synchronous write per line to a file descriptor (stdout by default),
 * so a line logged just before a crash is not left in a buffer.
 *
 * - The output is gone (EPIPE, EBADF: the supervisor reading it died): lines are dropped and
 *   counted from then on. pino's default destination (sonic-boom) retried a failed write every
 *   100 ms without end, at exit too: a service whose supervisor was killed never exited.
 * - The output is full (EAGAIN: its reader stopped reading): a line waits at most
 *   MAX_BLOCKED_WRITE_MS, then it and the lines after it are dropped, with one try each and no
 *   wait, until a write goes through. A service answers requests with its log congested.
 * - A line cut short by a full output is finished before any other, so the reader never sees
 *   two lines run together.
 * - Any other error drops the line only.
 */
export class LineSink {
  /** Lines not written: the output was gone, full for too long, or failed. */
  dropped = 0;
  private gone = false;
  /** The output stayed full past the bound: lines get one try, without waiting. */
  private congested = false;
  /** The unwritten end of a line that was cut short. */
  private rest: Buffer | null = null;
  private readonly writeTo: Write;
  private readonly sleep: (ms: number) => void;

  /** `io` replaces the system's write and sleep (tests). */
  constructor(
    private readonly fd: number,
    io: { write?: Write; sleep?: (ms: number) => void } = {},
  ) {
    this.writeTo = io.write ?? systemWrite;
    this.sleep = io.sleep ?? sleepSync;
  }

  /**
   * The process's stdout. Reading `process.stdout` once makes Node put a pipe or socket in
   * non-blocking mode (a child's stdio is handed over blocking): a full output then answers
   * EAGAIN, which is bounded here, instead of holding the whole process until it is read.
   */
  static stdout(): LineSink {
    void process.stdout;
    return new LineSink(1);
  }

  get closed(): boolean {
    return this.gone;
  }

  write(line: string): void {
    if (this.gone || (this.rest !== null && !this.finishRest())) {
      this.dropped++;
      return;
    }
    let first: number;
    try {
      first = this.tryWrite(line);
    } catch {
      this.dropped++;
      return;
    }
    if (first < 0) {
      // Nothing of the line went out before the output was given up on.
      this.dropped++;
      return;
    }
    const size = Buffer.byteLength(line);
    if (first === size) return;
    // A partial write (a pipe near full) goes on from the first byte not written.
    this.rest = Buffer.from(line).subarray(first);
    this.finishRest();
  }

  /** Writes what is left of a cut line; false while some of it is still waiting. */
  private finishRest(): boolean {
    while (this.rest !== null) {
      let n: number;
      try {
        n = this.tryWrite(this.rest);
      } catch {
        // The output failed mid-line: what is left is lost with it.
        this.rest = null;
        return false;
      }
      if (n < 0) return false;
      this.rest = n === this.rest.length ? null : this.rest.subarray(n);
    }
    return true;
  }

  /**
   * One write, retried while the output is full within the bound: the bytes written, or -1 when
   * the output stayed full. Throws when it failed otherwise (and marks it gone for EPIPE/EBADF).
   */
  private tryWrite(data: string | Buffer): number {
    let blockedMs = 0;
    for (;;) {
      try {
        const n = this.writeTo(this.fd, data);
        this.congested = false;
        return n;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EBUSY') {
          if (this.congested || blockedMs >= MAX_BLOCKED_WRITE_MS) {
            this.congested = true;
            return -1;
          }
          this.sleep(BLOCKED_RETRY_MS);
          blockedMs += BLOCKED_RETRY_MS;
          continue;
        }
        if (code === 'EPIPE' || code === 'EBADF') this.gone = true;
        throw err;
      }
    }
  }
}
