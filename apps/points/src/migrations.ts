/**
 * Schema migrations, versioned and append-only. Portable types only (bigint, varchar) so the
 * same migrations run on SQLite, PostgreSQL and MySQL.
 */
import type { Migration } from '@concord/platform';
import { sql } from 'kysely';

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'ledger, balances',
    async up(db) {
      await db.schema
        .createTable('ledger')
        .addColumn('key', 'varchar(128)', (c) => c.primaryKey())
        .addColumn('kind', 'varchar(10)', (c) => c.notNull())
        .addColumn('user_id', 'varchar(128)', (c) => c.notNull())
        .addColumn('order_id', 'varchar(128)', (c) => c.notNull())
        .addColumn('delta', 'bigint', (c) => c.notNull())
        .addColumn('created_at', 'varchar(40)', (c) => c.notNull())
        .addCheckConstraint('ledger_delta_sign', sql`(kind = 'AWARD' and delta >= 0) or (kind = 'REVOKE' and delta <= 0)`)
        .execute();
      await db.schema.createIndex('ledger_user').on('ledger').column('user_id').execute();
      // No CHECK (points >= 0): a revoke may overtake its award (see domain/ledger.ts).
      await db.schema
        .createTable('balances')
        .addColumn('user_id', 'varchar(128)', (c) => c.primaryKey())
        .addColumn('points', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
];
