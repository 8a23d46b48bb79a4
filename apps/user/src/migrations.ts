import { type Migration, outboxMigration } from '@concord/platform';

export interface UserDb {
  users: { id: string; email: string; name: string; password_hash: string; role: string; created_at: string };
}

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'users',
    async up(db) {
      await db.schema
        .createTable('users')
        .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
        .addColumn('email', 'varchar(254)', (c) => c.notNull().unique())
        .addColumn('name', 'varchar(200)', (c) => c.notNull())
        .addColumn('password_hash', 'varchar(300)', (c) => c.notNull())
        .addColumn('role', 'varchar(10)', (c) => c.notNull())
        .addColumn('created_at', 'varchar(40)', (c) => c.notNull())
        .execute();
    },
  },
  outboxMigration(2),
];
