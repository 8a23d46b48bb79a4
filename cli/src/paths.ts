import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (cli/dist/src/paths.js → ../../../). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * The built entry of an app, e.g. apps/order/dist/src/main.js, in this checkout or in the built
 * checkout `root` (a side-by-side bench runs one system from another revision's build).
 */
export function appEntry(app: string, root: string = ROOT): string {
  const entry = join(root, 'apps', app, 'dist', 'src', 'main.js');
  if (!existsSync(entry)) throw new Error(`no built entry for app "${app}" at ${entry}; run npm run build${root === ROOT ? '' : ` in ${root}`}`);
  return entry;
}

export const DEFAULT_TOPOLOGY = join(ROOT, 'cli', 'topologies', 'default.yaml');
