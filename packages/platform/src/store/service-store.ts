/** Opens a service's own database (default: SQLite in its data dir) and migrates it. */
import { join } from 'node:path';
import { enumVar, loadConfig, stringVar } from '../service-kit/config.js';
import type { ServiceContext } from '../service-kit/server.js';
import { type Migration, Store } from './store.js';

const storeSchema = {
  url: stringVar('CONCORD_DB_URL', '', /^(sqlite:|postgres:\/\/|postgresql:\/\/|mysql:\/\/)/, 'sqlite:<path>, postgres://… or mysql://…'),
  sqliteSync: enumVar('CONCORD_SQLITE_SYNC', 'NORMAL', ['NORMAL', 'FULL'] as const),
  sqliteCheckpoint: enumVar('CONCORD_SQLITE_CHECKPOINT', 'background', ['background', 'inline'] as const),
};

export async function openServiceStore<DB>(ctx: ServiceContext<unknown>, migrations: readonly Migration[]): Promise<Store<DB>> {
  const cfg = loadConfig(storeSchema);
  const url = cfg.url || `sqlite:${join(ctx.dataDir, `${ctx.name}.db`)}`;
  const store = await Store.open<DB>({ url, log: ctx.log, sqliteSync: cfg.sqliteSync, sqliteCheckpoint: cfg.sqliteCheckpoint, telemetry: ctx.telemetry });
  ctx.onClose(() => store.close());
  await store.migrate(migrations);
  return store;
}
