/** A store on a fresh SQLite file in a temporary directory, migrated, for tests of the platform's store-backed parts. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../src/service-kit/logger.js';
import { type Migration, Store } from '../src/store/store.js';

export async function openTempSqliteStore<DB>(name: string, migrations: readonly Migration[]): Promise<{ store: Store<DB>; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), `concord-${name}-`));
  const store = await Store.open<DB>({ url: `sqlite:${join(dir, `${name}.db`)}`, log: createLogger({ service: `${name}-test`, instance: 'test', version: 'v1' }, 'silent') });
  await store.migrate(migrations);
  return {
    store,
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
