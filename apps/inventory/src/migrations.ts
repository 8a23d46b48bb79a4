/**
 * Schema migrations, versioned and append-only. Portable types only (integer, bigint, varchar,
 * text) so the same migrations run on SQLite, PostgreSQL and MySQL. Money is integer cents.
 */
import type { Migration } from '@concord/platform';
import { sql } from 'kysely';

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'products, reservations, meta',
    async up(db) {
      await db.schema
        .createTable('products')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('name', 'varchar(200)', (c) => c.notNull())
        .addColumn('price', 'integer', (c) => c.notNull())
        .addColumn('initial', 'integer', (c) => c.notNull())
        .addColumn('available', 'integer', (c) => c.notNull())
        .addColumn('reserved', 'integer', (c) => c.notNull())
        .addColumn('sold', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'varchar(40)', (c) => c.notNull())
        .addColumn('updated_at', 'varchar(40)', (c) => c.notNull())
        // The last line of defence: whatever the code does, no counter goes negative and no
        // unit appears or vanishes.
        .addCheckConstraint('products_counters_non_negative', sql`available >= 0 and reserved >= 0 and sold >= 0`)
        .addCheckConstraint('products_units_conserved', sql`${sql.ref('initial')} = available + reserved + sold`)
        .addCheckConstraint('products_price_positive', sql`price > 0`)
        .execute();
      await db.schema
        .createTable('reservations')
        .addColumn('id', 'varchar(128)', (c) => c.primaryKey())
        .addColumn('order_id', 'varchar(128)')
        .addColumn('status', 'varchar(20)', (c) => c.notNull())
        .addColumn('expires_at_ms', 'bigint')
        .addColumn('created_at', 'varchar(40)', (c) => c.notNull())
        .addColumn('updated_at', 'varchar(40)', (c) => c.notNull())
        .execute();
      // The sweeper's query: RESERVED ones by deadline.
      await db.schema.createIndex('reservations_due').on('reservations').columns(['status', 'expires_at_ms']).execute();
      await db.schema
        .createTable('reservation_items')
        .addColumn('reservation_id', 'varchar(128)', (c) => c.notNull().references('reservations.id'))
        .addColumn('product_id', 'varchar(64)', (c) => c.notNull().references('products.id'))
        .addColumn('quantity', 'integer', (c) => c.notNull().check(sql`quantity > 0`))
        .addPrimaryKeyConstraint('reservation_items_pk', ['reservation_id', 'product_id'])
        .execute();
      await db.schema
        .createTable('inventory_meta')
        .addColumn('name', 'varchar(100)', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
    },
  },
];
