/**
 * Schema migrations, versioned and append-only. Portable types only (bigint, varchar) so the
 * same migrations run on SQLite, PostgreSQL and MySQL. Money is integer cents in bigint columns
 * (a single charge may be up to 10^12 cents).
 */
import type { Migration } from '@concord/platform';
import { sql } from 'kysely';

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'wallets, charges, refunds',
    async up(db) {
      await db.schema
        .createTable('wallets')
        .addColumn('user_id', 'varchar(128)', (c) => c.primaryKey())
        .addColumn('balance', 'bigint', (c) => c.notNull())
        .addColumn('deposited', 'bigint', (c) => c.notNull())
        .addColumn('created_at', 'varchar(40)', (c) => c.notNull())
        // The last line of defence: whatever the code does, no wallet goes negative, and none
        // holds more than was ever put into it (every refund is bounded by its charge).
        .addCheckConstraint('wallets_balance_bounded', sql`balance >= 0 and balance <= deposited`)
        .execute();
      await db.schema
        .createTable('charges')
        .addColumn('id', 'varchar(128)', (c) => c.primaryKey())
        .addColumn('user_id', 'varchar(128)')
        .addColumn('order_id', 'varchar(128)')
        .addColumn('amount', 'bigint', (c) => c.notNull())
        .addColumn('refunded', 'bigint', (c) => c.notNull())
        .addColumn('status', 'varchar(10)', (c) => c.notNull())
        .addColumn('created_at', 'varchar(40)', (c) => c.notNull())
        .addCheckConstraint('charges_refund_bounded', sql`refunded >= 0 and refunded <= amount`)
        .addCheckConstraint(
          'charges_status_shape',
          sql`(status = 'CHARGED' and amount > 0 and user_id is not null and order_id is not null) or (status = 'VOID' and amount = 0 and user_id is null)`,
        )
        .execute();
      await db.schema.createIndex('charges_user').on('charges').column('user_id').execute();
      await db.schema
        .createTable('refunds')
        .addColumn('id', 'varchar(128)', (c) => c.primaryKey())
        .addColumn('charge_id', 'varchar(128)', (c) => c.notNull().references('charges.id'))
        .addColumn('amount', 'bigint', (c) => c.notNull().check(sql`amount >= 0`))
        .addColumn('requested', 'bigint')
        .addColumn('created_at', 'varchar(40)', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('refunds_charge').on('refunds').column('charge_id').execute();
    },
  },
];
