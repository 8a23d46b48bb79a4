/**
 * The expiry sweeper: every interval, expires a bounded batch of overdue RESERVED reservations
 * (each in its own short transaction, through the same state machine as every command), and
 * goes again at once while batches come back full. Several instances may sweep together: the
 * transaction re-reads, so a reservation is expired once. Errors are logged, never thrown.
 */
import type { Logger } from '@concord/platform';
import type { Reservations } from './reservations.js';

export interface SweeperOptions {
  reservations: Reservations;
  log: Logger;
  intervalMs: number;
  batchSize: number;
  now?: () => number;
}

export class Sweeper {
  private timer: NodeJS.Timeout | null = null;
  private pass: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly opts: SweeperOptions) {}

  start(): void {
    this.schedule(this.opts.intervalMs);
  }

  private now(): number {
    return this.opts.now ? this.opts.now() : Date.now();
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.pass = this.sweep().then(({ expired, full }) => {
        this.pass = null;
        // A full batch that made progress: more may be due, go again at once.
        this.schedule(full && expired > 0 ? 0 : this.opts.intervalMs);
      });
    }, ms);
    this.timer.unref();
  }

  /** One pass: how many reservations it expired, and whether the batch was full. Never throws. */
  async sweep(): Promise<{ expired: number; full: boolean }> {
    let full = false;
    let expired = 0;
    try {
      const ids = await this.opts.reservations.overdue(this.now(), this.opts.batchSize);
      full = ids.length === this.opts.batchSize;
      for (const id of ids) {
        if (this.closed) break;
        try {
          if ((await this.opts.reservations.command('expire', id, this.now())).changed) expired++;
        } catch (err) {
          this.opts.log.error({ err, reservationId: id }, 'expiring a reservation failed');
        }
      }
      if (expired > 0) this.opts.log.info({ expired }, 'expired overdue reservations');
    } catch (err) {
      this.opts.log.error({ err }, 'reservation sweep failed');
    }
    return { expired, full };
  }

  /** Stops scheduling and waits for a pass in progress. */
  async stop(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.pass;
  }
}
