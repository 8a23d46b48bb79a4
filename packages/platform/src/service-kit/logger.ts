import { writeSync } from 'node:fs';
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(fields: { service: string; instance: string; version: string }, level: string, sink: LineSink = new LineSink(1)): Logger {
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

/** How long one line may wait for a full output (EAGAIN) before it is dropped. */
export const MAX_BLOCKED_WRITE_MS = 1000;
/** The pause between two tries of a full output. */
const BLOCKED_RETRY_MS = 10;

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
const sleepSync = (ms: number): void => void Atomics.wait(sleepCell, 0, 0, ms);

/**
 * A log's destination: one synchronous write per line to a file descriptor (stdout by default),
 * so a line logged just before a crash is not left in a buffer. When the output is gone (EPIPE,
 * EBADF: the supervisor reading it died) lines are dropped and counted from then on; a full
 * output is retried for at most MAX_BLOCKED_WRITE_MS per line. pino's default destination
 * (sonic-boom) retried a failed write every 100 ms without end, at exit too: a service whose
 * supervisor was killed never exited (a gateway was still retrying ten minutes later).
 */
export class LineSink {
  /** Lines not written: the output was gone, or full for too long. */
  dropped = 0;
  private gone = false;

  private readonly writeTo: (fd: number, data: string | Buffer) => number;
  private readonly sleep: (ms: number) => void;

  /** `io` replaces the system's write and sleep (tests). */
  constructor(
    private readonly fd: number,
    io: { write?: (fd: number, data: string | Buffer) => number; sleep?: (ms: number) => void } = {},
  ) {
    this.writeTo = io.write ?? ((fd, data) => (typeof data === 'string' ? writeSync(fd, data) : writeSync(fd, data)));
    this.sleep = io.sleep ?? sleepSync;
  }

  get closed(): boolean {
    return this.gone;
  }

  write(line: string): void {
    if (this.gone) {
      this.dropped++;
      return;
    }
    let rest: Buffer | null = null;
    let blockedMs = 0;
    for (;;) {
      try {
        if (rest === null) {
          const n = this.writeTo(this.fd, line);
          // A partial write (a pipe near full) goes on from the first byte not written.
          if (n === Buffer.byteLength(line)) return;
          rest = Buffer.from(line).subarray(n);
        } else {
          rest = rest.subarray(this.writeTo(this.fd, rest));
          if (rest.length === 0) return;
        }
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EBUSY') {
          if (blockedMs < MAX_BLOCKED_WRITE_MS) {
            this.sleep(BLOCKED_RETRY_MS);
            blockedMs += BLOCKED_RETRY_MS;
            continue;
          }
        } else {
          this.gone = true;
        }
        this.dropped++;
        return;
      }
    }
  }
}
