/**
 * The live status line of a long operation (bench, chaos, the audit's wait for quiet). On a
 * terminal it is rewritten in place every tick. Written to a file or a CI log, carriage returns
 * would pile a whole run into one line (a `bench:ab` run made one of 300 kB); there it becomes a
 * plain line at most every `everyMs`, and the last state is written when the line ends.
 */

/** What a line is written to: a terminal (`isTTY`) or anything else (a file, a pipe). */
export interface ProgressOut {
  write(text: string): unknown;
  isTTY?: boolean;
}

/** How often a line goes to a log that is not a terminal: often enough to follow a run, not per tick. */
export const LOG_EVERY_MS = 5_000;

export class ProgressLine {
  /** On a terminal: a partial line is showing (the cursor is at its end). */
  private showing = false;
  /** Elsewhere: the latest state not written yet. */
  private pending: string | null = null;
  private lastWrittenMs = Number.NEGATIVE_INFINITY;
  private readonly everyMs: number;
  private readonly now: () => number;

  constructor(
    private readonly out: ProgressOut = process.stderr,
    opts: { everyMs?: number; now?: () => number } = {},
  ) {
    this.everyMs = opts.everyMs ?? LOG_EVERY_MS;
    this.now = opts.now ?? Date.now;
  }

  /** The current state of the operation. */
  update(line: string): void {
    if (this.out.isTTY) {
      this.out.write(`\r\x1b[2K${line}`);
      this.showing = true;
      return;
    }
    const now = this.now();
    if (now - this.lastWrittenMs >= this.everyMs) {
      this.out.write(`${line}\n`);
      this.lastWrittenMs = now;
      this.pending = null;
    } else {
      this.pending = line;
    }
  }

  /**
   * Clears a showing line so that a line of its own (an event, a note) can be written; the next
   * update shows the state again. Nothing to do off a terminal, where every line is whole.
   */
  clear(): void {
    if (!this.showing) return;
    this.out.write('\r\x1b[2K');
    this.showing = false;
  }

  /** The operation (or its phase) ended: the final state stays, and what follows starts on a new line. */
  end(): void {
    if (this.showing) this.out.write('\n');
    this.showing = false;
    if (this.pending !== null) this.out.write(`${this.pending}\n`);
    this.pending = null;
    this.lastWrittenMs = Number.NEGATIVE_INFINITY;
  }
}
