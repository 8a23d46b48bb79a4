/**
 * Storage: one code path (Kysely) over SQLite (embedded default), PostgreSQL and MySQL.
 *
 * SQLite runs in WAL mode; several processes of one service share its file, so write
 * transactions begin IMMEDIATE (take the write lock up front instead of failing to upgrade).
 * `synchronous=NORMAL` in WAL mode keeps every committed transaction across a process crash
 * (kill -9); `CONCORD_SQLITE_SYNC=FULL` also survives power loss, at a cost per commit.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type Database from 'better-sqlite3';
import type { CompiledQuery, Dialect, Kysely, QueryResult, Transaction } from 'kysely';

/**
 * Kysely and the SQLite binding are loaded on first use: processes without a database (the
 * gateway, the control plane) never pay their ~10 MiB of memory.
 */
type KyselyModule = typeof import('kysely');
let K: KyselyModule | null = null;
async function kysely(): Promise<KyselyModule> {
  K ??= await import('kysely');
  return K;
}
function k(): KyselyModule {
  if (!K) throw new Error('the store is used before Store.open loaded Kysely');
  return K;
}
/**
 * SQLite connections held by an open transaction of a Store, and how to run a statement on each
 * without Kysely. A Kysely query goes through five async layers (executor, connection provider,
 * the provider's chain, the driver, result plugins) before SQLite runs it synchronously: ~4.5 µs
 * of CPU per statement against ~2.4 µs for the statement itself (an in-memory database, this
 * machine), on the ~40 statements an order makes in the order process. Inside a transaction
 * the connection is this transaction's alone (Kysely's SQLite driver holds its mutex from
 * `begin` to `commit`), so a statement run directly is the statement Kysely would have run, in
 * the same place. Entries are removed when the transaction ends. (A handle kept past its
 * transaction is a bug either way: Kysely's own single-connection handle does not take the mutex
 * again either.) Two things Kysely would do are skipped: its plugins (a Store has none; one
 * added would have to run here too), and its queue of one transaction's statements, which only
 * matters to statements started together without awaiting each (none are).
 */
const HELD = new WeakMap<object, SqliteDirect>();

/** Runs compiled statements on a better-sqlite3 database, with the result Kysely's SQLite driver gives. */
class SqliteDirect {
  /** `prepare`: the store's statement cache (withStatementCache). */
  constructor(private readonly prepare: (sql: string) => Database.Statement) {}

  run<O>(sql: string, parameters: readonly unknown[]): Promise<QueryResult<O>> {
    try {
      const stmt = this.prepare(sql);
      if (stmt.reader) return Promise.resolve({ rows: stmt.all(parameters as unknown[]) as O[] });
      const { changes, lastInsertRowid } = stmt.run(parameters as unknown[]);
      return Promise.resolve({ numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] });
    } catch (err) {
      // As from Kysely: a failed statement is a rejected promise, never a throw at the call.
      return Promise.reject(err);
    }
  }
}

/**
 * Runs SQL text with its parameters on a connection or transaction: directly on SQLite when `db`
 * is the connection of an open Store transaction (see HELD), else compiled for Kysely.
 */
// biome-ignore lint/suspicious/noExplicitAny: any store's connection or transaction; the statement is the caller's
export function execute<O>(db: Kysely<any>, sql: string, parameters: readonly unknown[]): Promise<QueryResult<O>> {
  const direct = HELD.get(db);
  return direct ? direct.run<O>(sql, parameters) : db.executeQuery(compiledQuery(sql, parameters) as CompiledQuery<O>);
}

/** Compiled parameterless statements, by text (savepoints, begin/commit: several per order). */
const RAW_CACHE = new Map<string, CompiledQuery>();
const MAX_RAW_CACHE = 256;
const NO_PARAMETERS: readonly unknown[] = Object.freeze([]);

/**
 * Raw SQL on a connection or transaction (statement text without parameters). Compiled once per
 * text: building and compiling a query node for `savepoint x` cost more than SQLite running it.
 */
export function rawSql(db: Kysely<any>, text: string): Promise<unknown> {
  const direct = HELD.get(db);
  if (direct) return direct.run(text, NO_PARAMETERS);
  // Outside a transaction: compiled once per text for Kysely.
  let q = RAW_CACHE.get(text);
  if (!q) {
    q = k().CompiledQuery.raw(text, []);
    if (RAW_CACHE.size < MAX_RAW_CACHE) RAW_CACHE.set(text, q);
  }
  return db.executeQuery(q);
}
/** What a piece of work inside a transaction came to: its value, or the error it threw. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/**
 * Runs `fn` inside savepoint `name` of the open transaction `trx`. When `fn` throws, its writes
 * are rolled back and the outcome carries the error; the transaction stays usable. When the
 * database ended the whole transaction with that error (MySQL does on a deadlock, and the
 * savepoint is gone with it), that error is thrown, not the savepoint's.
 */
export async function inSavepoint<T>(trx: Parameters<typeof rawSql>[0], name: string, fn: () => Promise<T>): Promise<Outcome<T>> {
  await rawSql(trx, `savepoint ${name}`);
  try {
    const value = await fn();
    await rawSql(trx, `release savepoint ${name}`);
    return { ok: true, value };
  } catch (error) {
    try {
      await rawSql(trx, `rollback to savepoint ${name}`);
      await rawSql(trx, `release savepoint ${name}`);
    } catch {
      throw error;
    }
    return { ok: false, error };
  }
}

/** SQL text and its parameters as Kysely runs them (statements of `execute` outside a SQLite transaction). */
function compiledQuery(text: string, parameters: readonly unknown[]): CompiledQuery {
  return k().CompiledQuery.raw(text, [...parameters]);
}
import { SpanKind, trace } from '@opentelemetry/api';
import type { Logger } from '../service-kit/logger.js';
import { BACKSTOP_PAGES, Checkpointer } from './checkpointer.js';
import { ROOT_CONTEXT, type Telemetry, type TraceContext } from '../telemetry/tracing.js';

export type DialectName = 'sqlite' | 'postgres' | 'mysql';

export interface StoreOptions {
  /** `sqlite:<path>`, `postgres://…` or `mysql://…`. */
  url: string;
  log: Logger;
  sqliteSync?: 'NORMAL' | 'FULL';
  /** Max connections for server databases. */
  poolSize?: number;
  /** When set, every transaction is a span. */
  telemetry?: Telemetry;
  /** SQLite file: WAL checkpoints on a worker thread (default) or inside commits, as SQLite does by default (see checkpointer.ts). */
  sqliteCheckpoint?: 'background' | 'inline';
}

export interface Migration {
  version: number;
  name: string;
  up(db: Kysely<any>, dialect: DialectName): Promise<void>;
}

export class Store<DB> {
  private constructor(
    readonly db: Kysely<DB>,
    readonly dialect: DialectName,
    private readonly log: Logger,
    /** The process's tracing (spans of transactions; batch routes' item spans). */
    readonly telemetry?: Telemetry,
    /** SQLite: runs the statements of this store's transactions (see HELD). */
    private readonly direct: SqliteDirect | null = null,
    /** SQLite file with background checkpoints. */
    private readonly checkpointer: Checkpointer | null = null,
  ) {}

  static async open<DB>(opts: StoreOptions): Promise<Store<DB>> {
    const mod = await kysely();
    const { dialect, name, prepare, checkpointer } = await makeDialect(opts, mod);
    const db = new mod.Kysely<DB>({ dialect });
    const store = new Store<DB>(db, name, opts.log, opts.telemetry, prepare ? new SqliteDirect(prepare) : null, checkpointer ?? null);
    await rawSql(db, 'select 1');
    return store;
  }

  private groupQueue: Array<{ fn: (trx: Kysely<DB>) => Promise<unknown>; trace: TraceContext | null; resolve: (v: unknown) => void; reject: (e: unknown) => void }> = [];
  private groupScheduled = false;
  /** A group transaction is running: calls made meanwhile wait and go in the next one, together. */
  private groupInFlight = false;

  /**
   * Group commit: runs `fn` in a transaction shared with the other `group` calls made in the
   * same tick (up to `MAX_GROUP`), each inside its own savepoint, so one failing `fn` rolls back
   * only itself. Resolves after the shared COMMIT — durability is the same as `tx`, at a fraction
   * of the per-transaction cost under load. The shared transaction's span continues the trace of
   * the first caller that gives one (`traceCtx`, else its active context). One group runs at a
   * time (the connection is one anyway): calls made while it runs go together in the next, so
   * transactions grow with the load instead of queueing one per tick.
   */
  group<T>(fn: (trx: Kysely<DB>) => Promise<T>, traceCtx?: TraceContext | null): Promise<T> {
    const parent = this.telemetry?.enabled ? this.telemetry.parentOf(traceCtx) : null;
    return new Promise<T>((resolve, reject) => {
      this.groupQueue.push({ fn, trace: parent, resolve: resolve as (v: unknown) => void, reject });
      this.scheduleGroup();
    });
  }

  private scheduleGroup(): void {
    if (this.groupScheduled || this.groupInFlight || this.groupQueue.length === 0) return;
    this.groupScheduled = true;
    setImmediate(() => void this.flushGroup());
  }

  private async flushGroup(): Promise<void> {
    this.groupScheduled = false;
    const batch = this.groupQueue.splice(0, MAX_GROUP);
    if (batch.length === 0) return;
    this.groupInFlight = true;
    try {
      await this.runGroup(batch);
    } finally {
      this.groupInFlight = false;
      this.scheduleGroup();
    }
  }

  private async runGroup(batch: Store<DB>['groupQueue']): Promise<void> {
    const outcomes: Array<Outcome<unknown>> = [];
    const traced = this.telemetry?.enabled ? batch.find((item) => item.trace && trace.getSpanContext(item.trace)) : undefined;
    try {
      await this.tx(async (trx) => {
        for (const item of batch) {
          // One member alone needs no savepoint: its failure is the transaction's.
          outcomes.push(batch.length === 1 ? { ok: true, value: await item.fn(trx) } : await inSavepoint(trx, 'concord_group', () => item.fn(trx)));
        }
      }, traced?.trace ?? ROOT_CONTEXT);
    } catch (error) {
      // The shared transaction failed (a lone fn failing, or the commit itself): everyone learns it.
      for (const item of batch) item.reject(error);
      return;
    }
    batch.forEach((item, i) => {
      const o = outcomes[i] as (typeof outcomes)[number];
      if (o.ok) item.resolve(o.value);
      else item.reject(o.error);
    });
  }

  /**
   * A view of this store bound to an open transaction: its `tx` and `group` run inside `trx`
   * instead of opening their own, so code written against a Store (with its own transactions)
   * can run as one item of a batch transaction unchanged.
   */
  bound(trx: Kysely<DB>): Store<DB> {
    const b = Object.create(this) as Store<DB>;
    // On PostgreSQL a failed statement (a unique violation a concurrent writer caused) aborts the
    // whole transaction, and code that retries its `tx` then got "current transaction is aborted".
    // There each bound `tx` is a savepoint: a failed one leaves neither its writes nor that state.
    // SQLite has one writer (no such race) and keeps the transaction usable after a failed statement.
    let depth = 0;
    const inner =
      this.dialect === 'sqlite'
        ? <T>(fn: (t: Kysely<DB>) => Promise<T>) => fn(trx)
        : async <T>(fn: (t: Kysely<DB>) => Promise<T>) => {
            // A name per depth: MySQL replaces a savepoint of the same name instead of nesting it.
            try {
              const o = await inSavepoint(trx, `concord_bound_${depth++}`, () => fn(trx));
              if (!o.ok) throw o.error;
              return o.value;
            } finally {
              depth--;
            }
          };
    Object.defineProperty(b, 'db', { value: trx });
    Object.defineProperty(b, 'tx', { value: inner });
    Object.defineProperty(b, 'group', { value: inner });
    return b;
  }

  /**
   * Runs `fn` in a write transaction, a `db.transaction` span under `traceCtx` (else the
   * active context) when that is traced. Keep it free of network calls: the write lock is held
   * for its whole duration.
   */
  async tx<T>(fn: (trx: Kysely<DB>) => Promise<T>, traceCtx?: TraceContext | null): Promise<T> {
    // A span only under a traced operation: background work (sweepers, relays, group commits
    // flushed outside any request) would otherwise start a one-span trace per transaction.
    const t = this.telemetry;
    if (t?.enabled) {
      const parent = t.parentOf(traceCtx);
      if (trace.getSpanContext(parent)) return t.inSpan('db.transaction', SpanKind.INTERNAL, () => this.rawTx(fn), { 'db.system': this.dialect }, parent);
    }
    return this.rawTx(fn);
  }

  private async rawTx<T>(fn: (trx: Kysely<DB>) => Promise<T>): Promise<T> {
    // Beware: a transaction (or any use of `db`) inside `fn` waits for the connection this one
    // holds and never gets it. Pass `trx` down instead. (AsyncLocalStorage could detect it,
    // at a cost on every promise in the process.)
    if (this.dialect !== 'sqlite') return this.db.transaction().execute((trx: Transaction<DB>) => fn(trx));
    return this.db.connection().execute(async (conn) => {
      if (this.direct) HELD.set(conn, this.direct);
      let committed = false;
      try {
        await rawSql(conn, 'begin immediate');
        try {
          const result = await fn(conn);
          await rawSql(conn, 'commit');
          committed = true;
          return result;
        } catch (err) {
          try {
            await rawSql(conn, 'rollback');
          } catch {
            /* the transaction may already be gone */
          }
          throw err;
        }
      } finally {
        HELD.delete(conn);
        // Outside the try: what the checkpointer does is never this transaction's failure.
        if (committed) this.checkpointer?.committed();
      }
    });
  }

  /**
   * Applies pending migrations in version order, each in its own transaction. Instances sharing a
   * database (two versions of a service) may start together: on SQLite the write lock orders
   * them; on PostgreSQL and MySQL a session lock held for the whole run does (MySQL commits DDL
   * at once, so a transaction alone would not).
   */
  async migrate(migrations: readonly Migration[]): Promise<number> {
    const sorted = [...migrations].sort((a, b) => a.version - b.version);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i]!.version === sorted[i - 1]!.version) throw new Error(`duplicate migration version ${sorted[i]!.version}`);
    }
    if (this.dialect === 'sqlite') return this.migrateOn(this.db, sorted, (fn) => this.tx(fn));
    return this.db.connection().execute(async (conn) => {
      // One lock per database (the lock spaces are server-wide): other services' migrations on
      // the same server go on in parallel.
      const pg = this.dialect === 'postgres';
      const lock = pg ? `select pg_advisory_lock(${MIGRATION_LOCK_KEY}) as got` : `select get_lock(concat('concord_migrations:', database()), ${MIGRATION_LOCK_WAIT_S}) as got`;
      const unlock = pg ? `select pg_advisory_unlock(${MIGRATION_LOCK_KEY})` : "select release_lock(concat('concord_migrations:', database()))";
      const got = ((await rawSql(conn, lock)) as { rows: Array<{ got: unknown }> }).rows[0]?.got;
      // PostgreSQL waits for its lock; MySQL's GET_LOCK answers 0 when its wait runs out.
      if (!pg && Number(got) !== 1) throw new Error(`another instance has been migrating this database for over ${MIGRATION_LOCK_WAIT_S} s; start again once it is done`);
      try {
        return await this.migrateOn(conn, sorted, (fn) => conn.transaction().execute((trx) => fn(trx)));
      } finally {
        await rawSql(conn, unlock);
      }
    });
  }

  private async migrateOn(db: Kysely<DB>, sorted: readonly Migration[], inTx: <T>(fn: (trx: Kysely<DB>) => Promise<T>) => Promise<T>): Promise<number> {
    await db.schema
      .createTable('schema_migrations')
      .ifNotExists()
      .addColumn('version', 'integer', (c) => c.primaryKey())
      .addColumn('name', 'varchar(200)', (c) => c.notNull())
      .addColumn('applied_at', 'varchar(40)', (c) => c.notNull())
      .execute();
    let applied = 0;
    for (const m of sorted) {
      const done = await inTx(async (trx) => {
        const t = trx as unknown as Kysely<{ schema_migrations: { version: number; name: string; applied_at: string } }>;
        const row = await t.selectFrom('schema_migrations').select('version').where('version', '=', m.version).executeTakeFirst();
        if (row) return false;
        await m.up(trx as Kysely<any>, this.dialect);
        await t.insertInto('schema_migrations').values({ version: m.version, name: m.name, applied_at: new Date().toISOString() }).execute();
        return true;
      });
      if (done) {
        applied++;
        this.log.info({ version: m.version, migration: m.name }, 'migration applied');
      }
    }
    return applied;
  }

  async close(): Promise<void> {
    await this.checkpointer?.close();
    await this.db.destroy();
  }
}

async function makeDialect(opts: StoreOptions, mod: KyselyModule): Promise<{ dialect: Dialect; name: DialectName; prepare?: (sql: string) => Database.Statement; checkpointer?: Checkpointer }> {
  const { SqliteDialect, PostgresDialect, MysqlDialect } = mod;
  const url = opts.url;
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const Database = (await import('better-sqlite3')).default;
    const database = new Database(path, { timeout: 5000 });
    database.pragma('journal_mode = WAL');
    database.pragma(`synchronous = ${opts.sqliteSync ?? 'NORMAL'}`);
    database.pragma('foreign_keys = ON');
    database.pragma('busy_timeout = 5000');
    // 4 MiB of page cache (the default is 2 MiB): hot rows stay in memory under load. 8 MiB
    // bought no throughput in a flat-out bench (within run-to-run noise) and cost ~25 MiB of
    // RSS over the system's seven databases (measured with `concord status`).
    database.pragma('cache_size = -4096');
    database.pragma('temp_store = memory');
    let checkpointer: Checkpointer | undefined;
    if (path !== ':memory:' && (opts.sqliteCheckpoint ?? 'background') === 'background') {
      checkpointer = new Checkpointer({
        path,
        onStart: () => database.pragma(`wal_autocheckpoint = ${BACKSTOP_PAGES}`),
        onError: (message) => opts.log.warn({ path, error: message }, 'a WAL checkpoint failed (the worker goes on; past the backstop, commits checkpoint themselves)'),
        onStopped: (err) => {
          try {
            database.pragma(`wal_autocheckpoint = ${SQLITE_DEFAULT_CHECKPOINT_PAGES}`);
          } catch {
            /* the database is closed already: nothing left to checkpoint */
          }
          opts.log.warn({ err, path }, 'the WAL checkpoint worker stopped; commits checkpoint the log themselves again');
        },
      });
    }
    const profile = process.env.CONCORD_SQL_PROFILE === '1' ? new SqlProfile() : null;
    const { proxy, prepare } = withStatementCache(database, profile);
    return { dialect: new SqliteDialect({ database: proxy }), name: 'sqlite', prepare, checkpointer };
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    // Loaded lazily so the embedded profile never needs the driver at runtime.
    return { dialect: new PostgresDialect({ pool: async () => new (await import('pg')).default.Pool({ connectionString: url, max: opts.poolSize ?? 10 }) }), name: 'postgres' };
  }
  if (url.startsWith('mysql://')) {
    return {
      dialect: new MysqlDialect({ pool: async () => (await import('mysql2')).createPool({ uri: url, connectionLimit: opts.poolSize ?? 10 }) }),
      name: 'mysql',
    };
  }
  throw new Error(`unsupported database URL "${url}": use sqlite:<path>, postgres://… or mysql://…`);
}

const MAX_CACHED_STATEMENTS = 500;
/** SQLite's own wal_autocheckpoint (pages). */
const SQLITE_DEFAULT_CHECKPOINT_PAGES = 1_000;
/** The PostgreSQL advisory lock key that orders migrations of instances sharing a database. */
const MIGRATION_LOCK_KEY = "hashtext('concord_migrations:' || current_database())";
/** How long a MySQL instance waits for another's migrations. */
const MIGRATION_LOCK_WAIT_S = 60;

/** Transactions merged into one group commit at most. */
const MAX_GROUP = 256;

/**
 * Kysely prepares every query anew; SQLite parsing and planning then dominates small queries.
 * Queries compiled from the same builder produce the same SQL text, so prepared statements are
 * cached by text (better-sqlite3 statements are synchronous, so reuse is safe).
 */
function withStatementCache(db: Database.Database, profile: SqlProfile | null): { proxy: Database.Database; prepare: (sql: string) => Database.Statement } {
  const cache = new Map<string, Database.Statement>();
  const compile = db.prepare.bind(db);
  const prepare = (source: string): Database.Statement => {
    let stmt = cache.get(source);
    if (!stmt) {
      stmt = profile ? profile.wrap(source, compile(source)) : compile(source);
      if (cache.size >= MAX_CACHED_STATEMENTS) cache.delete(cache.keys().next().value as string);
      cache.set(source, stmt);
    }
    return stmt;
  };
  const proxy = new Proxy(db, {
    get(target, prop, receiver) {
      if (prop === 'prepare') return prepare;
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return { proxy, prepare };
}

/**
 * CONCORD_SQL_PROFILE=1: time spent per SQL text, printed to stderr at exit (top 15). A
 * diagnostic for performance work; off by default.
 */
class SqlProfile {
  private readonly stats = new Map<string, { n: number; ms: number }>();

  constructor() {
    process.once('exit', () => {
      const top = [...this.stats.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 15);
      process.stderr.write(`sql profile (pid ${process.pid}):\n${top.map(([sql, s]) => `  ${s.ms.toFixed(0).padStart(7)} ms ${String(s.n).padStart(7)}× ${sql.slice(0, 160)}`).join('\n')}\n`);
    });
  }

  wrap(sql: string, stmt: Database.Statement): Database.Statement {
    const stats = this.stats;
    const time = <T>(fn: () => T): T => {
      const t0 = performance.now();
      try {
        return fn();
      } finally {
        const s = stats.get(sql) ?? { n: 0, ms: 0 };
        s.n++;
        s.ms += performance.now() - t0;
        stats.set(sql, s);
      }
    };
    return new Proxy(stmt, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if (prop === 'all' || prop === 'run' || prop === 'get') return (...args: unknown[]) => time(() => (v as (...a: unknown[]) => unknown).apply(target, args));
        if (prop === 'iterate') return (...args: unknown[]) => time(() => [...(v as (...a: unknown[]) => Iterable<unknown>).apply(target, args)])[Symbol.iterator]();
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
  }
}

/**
 * The database aborted the transaction so that another could go on, and asks for it to be run
 * again: a deadlock (MySQL/MariaDB 1213, which rolls the whole transaction back; PostgreSQL
 * 40P01) or a serialization failure (PostgreSQL 40001). SQLite serializes writers and raises
 * neither.
 */
export function isTransactionConflict(err: unknown): boolean {
  const e = err as { code?: string; errno?: number };
  return e.code === 'ER_LOCK_DEADLOCK' || e.errno === 1213 || e.code === '40P01' || e.code === '40001';
}

export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; errno?: number; message?: string };
  return e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || e.code === 'SQLITE_CONSTRAINT_UNIQUE' || e.code === '23505' || e.code === 'ER_DUP_ENTRY';
}
