/**
 * Storage: one code path (Kysely) over SQLite (embedded default), PostgreSQL and MySQL.
 *
 * SQLite runs in WAL mode; several processes of one service share its file, so write
 * transactions begin IMMEDIATE (take the write lock up front instead of failing to upgrade).
 * `synchronous=NORMAL` in WAL mode keeps every committed transaction across a process crash
 * (kill -9); `CONCORD_SQLITE_SYNC=FULL` also survives power loss, at a cost per commit.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { type Dialect, Kysely, MysqlDialect, PostgresDialect, SqliteDialect, type Transaction, sql } from 'kysely';
import { invariant } from '@concord/core';
import type { Logger } from '../service-kit/logger.js';

export type DialectName = 'sqlite' | 'postgres' | 'mysql';

export interface StoreOptions {
  /** `sqlite:<path>`, `postgres://…` or `mysql://…`. */
  url: string;
  log: Logger;
  sqliteSync?: 'NORMAL' | 'FULL';
  /** Max connections for server databases. */
  poolSize?: number;
}

export interface Migration {
  version: number;
  name: string;
  up(db: Kysely<any>, dialect: DialectName): Promise<void>;
}

export class Store<DB> {
  /** Marks code running inside one of this store's transactions (to catch self-deadlocks). */
  private readonly inTx = new AsyncLocalStorage<true>();

  private constructor(
    readonly db: Kysely<DB>,
    readonly dialect: DialectName,
    private readonly log: Logger,
  ) {}

  static async open<DB>(opts: StoreOptions): Promise<Store<DB>> {
    const { dialect, name } = makeDialect(opts);
    const db = new Kysely<DB>({ dialect });
    const store = new Store<DB>(db, name, opts.log);
    await sql`select 1`.execute(db);
    return store;
  }

  /**
   * Runs `fn` in a write transaction. Keep it free of network calls: the write lock is held
   * for its whole duration.
   */
  async tx<T>(fn: (trx: Kysely<DB>) => Promise<T>): Promise<T> {
    // A transaction opened inside another would wait for the connection the outer one holds.
    invariant(!this.inTx.getStore(), 'Store.tx called inside a transaction of the same store (it would deadlock); pass the outer trx down instead');
    if (this.dialect !== 'sqlite') return this.db.transaction().execute((trx: Transaction<DB>) => this.inTx.run(true, () => fn(trx)));
    return this.db.connection().execute((conn) => this.inTx.run(true, async () => {
      await sql`begin immediate`.execute(conn);
      try {
        const result = await fn(conn);
        await sql`commit`.execute(conn);
        return result;
      } catch (err) {
        try {
          await sql`rollback`.execute(conn);
        } catch {
          /* the transaction may already be gone */
        }
        throw err;
      }
    }));
  }

  /** Applies pending migrations in version order, each in its own transaction. */
  async migrate(migrations: readonly Migration[]): Promise<number> {
    const sorted = [...migrations].sort((a, b) => a.version - b.version);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i]!.version === sorted[i - 1]!.version) throw new Error(`duplicate migration version ${sorted[i]!.version}`);
    }
    await this.db.schema
      .createTable('schema_migrations')
      .ifNotExists()
      .addColumn('version', 'integer', (c) => c.primaryKey())
      .addColumn('name', 'varchar(200)', (c) => c.notNull())
      .addColumn('applied_at', 'varchar(40)', (c) => c.notNull())
      .execute();
    let applied = 0;
    for (const m of sorted) {
      const done = await this.tx(async (trx) => {
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
    await this.db.destroy();
  }
}

function makeDialect(opts: StoreOptions): { dialect: Dialect; name: DialectName } {
  const url = opts.url;
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const database = new Database(path, { timeout: 5000 });
    database.pragma('journal_mode = WAL');
    database.pragma(`synchronous = ${opts.sqliteSync ?? 'NORMAL'}`);
    database.pragma('foreign_keys = ON');
    database.pragma('busy_timeout = 5000');
    return { dialect: new SqliteDialect({ database }), name: 'sqlite' };
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

export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; errno?: number; message?: string };
  return e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || e.code === 'SQLITE_CONSTRAINT_UNIQUE' || e.code === '23505' || e.code === 'ER_DUP_ENTRY';
}
