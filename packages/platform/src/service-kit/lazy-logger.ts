/**
 * A request logger that costs nothing until something is logged. Fastify makes a child logger
 * (pino `child`, which serializes its bindings) for every request, and a traced request gets
 * another with its trace and span ids; few requests log anything (below the configured level,
 * none), so a child is made on its first enabled call only. Every service's app uses it
 * (buildApp).
 */
import type { FastifyBaseLogger } from 'fastify';

type LogFn = (...args: unknown[]) => void;
type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

interface PinoLike extends FastifyBaseLogger {
  isLevelEnabled?(level: string): boolean;
}

export class LazyChildLogger {
  private made: FastifyBaseLogger | null = null;

  constructor(
    /** The real logger at the root of the chain (its level decides what is logged). */
    private readonly root: PinoLike,
    /** A lazy parent, for a child of a child. */
    private readonly parent: LazyChildLogger | null,
    private readonly bindings: Record<string, unknown>,
    private readonly opts: Record<string, unknown> | undefined,
  ) {}

  private get real(): FastifyBaseLogger {
    this.made ??= (this.parent ? this.parent.real : this.root).child(this.bindings, this.opts);
    return this.made;
  }

  private log(level: Level, args: unknown[]): void {
    if (this.root.isLevelEnabled && !this.root.isLevelEnabled(level)) return;
    (this.real[level] as LogFn)(...args);
  }

  get level(): string {
    return this.made?.level ?? this.root.level;
  }

  set level(value: string) {
    this.real.level = value;
  }

  fatal(...args: unknown[]): void {
    this.log('fatal', args);
  }
  error(...args: unknown[]): void {
    this.log('error', args);
  }
  warn(...args: unknown[]): void {
    this.log('warn', args);
  }
  info(...args: unknown[]): void {
    this.log('info', args);
  }
  debug(...args: unknown[]): void {
    this.log('debug', args);
  }
  trace(...args: unknown[]): void {
    this.log('trace', args);
  }
  silent(): void {}

  /** Lazy too: made (with its parents) on its first enabled line. */
  child(bindings: Record<string, unknown>, opts?: Record<string, unknown>): FastifyBaseLogger {
    if (this.made) return this.made.child(bindings, opts);
    return new LazyChildLogger(this.root, this, bindings, opts) as unknown as FastifyBaseLogger;
  }
}

/** For `app.setChildLoggerFactory`. */
export function lazyChildLoggerFactory(logger: FastifyBaseLogger, bindings: Record<string, unknown>, opts: Record<string, unknown>): FastifyBaseLogger {
  return new LazyChildLogger(logger as PinoLike, null, bindings, opts) as unknown as FastifyBaseLogger;
}
