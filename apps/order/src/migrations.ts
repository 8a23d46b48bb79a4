import { sql } from 'kysely';
import { type Migration, idempotencyMigration, idempotencyOwnerMigration, outboxMigration, sagaMigration, sagaStorageMigration } from '@concord/platform';

export interface OrderDb {
  orders: {
    id: string;
    user_id: string;
    status: string;
    total: number;
    reason: string | null;
    created_at: string;
    updated_at: string;
    cancel_requested_at: string | null;
  };
  order_items: { order_id: string; line: number; product_id: string; quantity: number; price: number };
}

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'orders',
    async up(db) {
      await db.schema
        .createTable('orders')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('status', 'varchar(20)', (c) => c.notNull())
        .addColumn('total', 'bigint', (c) => c.notNull().check(sqlCheck('total >= 0')))
        .addColumn('reason', 'text')
        .addColumn('created_at', 'varchar(40)', (c) => c.notNull())
        .addColumn('updated_at', 'varchar(40)', (c) => c.notNull())
        .addColumn('cancel_requested_at', 'varchar(40)')
        .execute();
      await db.schema.createIndex('orders_user_created').on('orders').columns(['user_id', 'created_at', 'id']).execute();
      await db.schema.createIndex('orders_status').on('orders').column('status').execute();
      await db.schema
        .createTable('order_items')
        .addColumn('order_id', 'varchar(64)', (c) => c.notNull().references('orders.id'))
        .addColumn('line', 'integer', (c) => c.notNull())
        .addColumn('product_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('quantity', 'integer', (c) => c.notNull().check(sqlCheck('quantity > 0')))
        .addColumn('price', 'bigint', (c) => c.notNull().check(sqlCheck('price >= 0')))
        .addPrimaryKeyConstraint('order_items_pk', ['order_id', 'line'])
        .execute();
    },
  },
  sagaMigration(2),
  idempotencyMigration(3),
  outboxMigration(4),
  idempotencyOwnerMigration(5),
  sagaStorageMigration(6),
];

function sqlCheck(expr: string) {
  return sql.raw(expr);
}
