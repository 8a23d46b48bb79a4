import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (cli/dist/src/paths.js → ../../../). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The built entry of an app, e.g. apps/order/dist/src/main.js. */
export function appEntry(app: string): string {
  const entry = join(ROOT, 'apps', app, 'dist', 'src', 'main.js');
  if (!existsSync(entry)) throw new Error(`no built entry for app "${app}" at ${entry}; run npm run build`);
  return entry;
}

export const DEFAULT_TOPOLOGY = join(ROOT, 'cli', 'topologies', 'default.yaml');
