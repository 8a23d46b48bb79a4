/** `concord audit`: logs in as the admin and runs the invariant audit against the gateway. */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { adminToken, renderAudit, runAudit } from './audit/audit.js';
import { cliConfig } from './config.js';
import type { ArgSpec } from './bench/args.js';
import { ProgressLine } from './progress.js';

export const AUDIT_ARGS = {
  'quiet-timeout': { kind: 'duration', default: 60_000, help: 'how long to wait for every saga to finish before checking' },
} satisfies ArgSpec;

export async function auditCommand(opts: { 'quiet-timeout': number }): Promise<number> {
  const cfg = cliConfig();
  const gatewayUrl = process.env.CONCORD_GATEWAY_URL || `http://127.0.0.1:${cfg.gatewayPort}`;
  const email = process.env.CONCORD_ADMIN_EMAIL || 'admin@concord.local';
  let password = process.env.CONCORD_ADMIN_PASSWORD ?? '';
  const file = join(resolve(cfg.dataDir), 'user', 'admin-password');
  if (!password && existsSync(file)) password = readFileSync(file, 'utf8').trim();
  if (!password) {
    process.stderr.write(`concord audit: set CONCORD_ADMIN_PASSWORD (or run from the directory whose ${file} holds the generated one)\n`);
    return 2;
  }
  const quietTimeoutMs = opts['quiet-timeout'];
  const token = await adminToken(gatewayUrl, email, password);
  const progress = new ProgressLine();
  const { ok, results } = await runAudit({ gatewayUrl, token, quietTimeoutMs, onProgress: (l) => progress.update(l) }).finally(() => progress.end());
  process.stdout.write(`${renderAudit(results, process.stdout.isTTY === true)}\n`);
  return ok ? 0 : 1;
}
