import type { Migration } from '../store/store.js';

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
