import { type Migration, rawSql } from '../store/store.js';

export interface SagaTables {
  sagas: {
    id: string;
    type: string;
    status: string;
    step: number;
    attempts: number;
    failure: string | null;
    last_error: string | null;
    resume: string | null;
    data: string;
    owner: string;
    lease_until_ms: number;
    created_at: string;
    updated_at: string;
  };
  /** The step timeline (replaces saga_events): clustered by saga, one b-tree to touch per write. */
  saga_log: {
    saga_id: string;
    seq: number;
    step: string;
    phase: string;
    event: string;
    attempt: number;
    detail: string | null;
    at: string;
  };
  saga_events: {
    id?: number;
    saga_id: string;
    step: string;
    phase: string;
    event: string;
    attempt: number;
    detail: string | null;
    at: string;
  };
}

export function sagaMigration(version: number): Migration {
  return {
    version,
    name: 'saga log',
    async up(db, dialect) {
      await db.schema
        .createTable('sagas')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('type', 'varchar(64)', (c) => c.notNull())
        .addColumn('status', 'varchar(20)', (c) => c.notNull())
        .addColumn('step', 'integer', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('failure', 'text')
        .addColumn('last_error', 'text')
        .addColumn('resume', 'varchar(20)')
        .addColumn('data', 'text', (c) => c.notNull())
        .addColumn('owner', 'varchar(100)', (c) => c.notNull())
        .addColumn('lease_until_ms', 'bigint', (c) => c.notNull())
        .addColumn('created_at', 'varchar(40)', (c) => c.notNull())
        .addColumn('updated_at', 'varchar(40)', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('sagas_status').on('sagas').columns(['status', 'lease_until_ms']).execute();
      await db.schema
        .createTable('saga_events')
        .addColumn('id', 'integer', (c) => (dialect === 'postgres' ? c.generatedAlwaysAsIdentity().primaryKey() : dialect === 'mysql' ? c.autoIncrement().primaryKey() : c.primaryKey().autoIncrement()))
        .addColumn('saga_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('step', 'varchar(64)', (c) => c.notNull())
        .addColumn('phase', 'varchar(20)', (c) => c.notNull())
        .addColumn('event', 'varchar(20)', (c) => c.notNull())
        .addColumn('attempt', 'integer', (c) => c.notNull())
        .addColumn('detail', 'text')
        .addColumn('at', 'varchar(40)', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('saga_events_saga').on('saga_events').columns(['saga_id', 'id']).execute();
    },
  };
}

/**
 * Storage tuned for write volume: the timeline moves to `saga_log`, keyed (saga_id, seq) and —
 * on SQLite — WITHOUT ROWID, so an event touches one b-tree page instead of a table page and an
 * index page; the active-saga index drops its lease column, which every lease renewal rewrote.
 */
export function sagaStorageMigration(version: number): Migration {
  return {
    version,
    name: 'saga log clustered by saga',
    async up(db, dialect) {
      // MySQL names the table of the index; PostgreSQL and SQLite refuse it.
      const drop = db.schema.dropIndex('sagas_status');
      await (dialect === 'mysql' ? drop.on('sagas') : drop).execute();
      await db.schema.createIndex('sagas_active').on('sagas').column('status').execute();
      let create = db.schema
        .createTable('saga_log')
        .addColumn('saga_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('step', 'varchar(64)', (c) => c.notNull())
        .addColumn('phase', 'varchar(20)', (c) => c.notNull())
        .addColumn('event', 'varchar(20)', (c) => c.notNull())
        .addColumn('attempt', 'integer', (c) => c.notNull())
        .addColumn('detail', 'text')
        .addColumn('at', 'varchar(40)', (c) => c.notNull())
        .addPrimaryKeyConstraint('saga_log_pk', ['saga_id', 'seq']);
      if (dialect === 'sqlite') create = create.modifyEnd((await import('kysely')).sql`without rowid`);
      await create.execute();
      await rawSql(db, 'insert into saga_log (saga_id, seq, step, phase, event, attempt, detail, at) select saga_id, id, step, phase, event, attempt, detail, at from saga_events');
      await db.schema.dropTable('saga_events').execute();
    },
  };
}
