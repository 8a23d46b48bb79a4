/** `concord status`: a table of instances with version, address, health, uptime and memory. */
import { cliConfig } from './config.js';

interface InstanceRow {
  id: string;
  service: string;
  version: string;
  address: string;
  port: number;
  status: string;
}

interface Live {
  uptimeS: number;
  rssBytes: number;
  pid: number;
}

export interface StatusRow extends InstanceRow {
  uptimeS: number | null;
  rssBytes: number | null;
  pid: number | null;
}

export async function collectStatus(controlUrl: string): Promise<StatusRow[]> {
  const res = await fetch(`${controlUrl}/api/registry/instances`, { signal: AbortSignal.timeout(3000) });
  if (!res.ok) throw new Error(`control plane answered ${res.status}`);
  const { items } = (await res.json()) as { items: InstanceRow[] };
  return Promise.all(
    items.map(async (i) => {
      try {
        const host = i.address.includes(':') ? `[${i.address}]` : i.address;
        const r = await fetch(`http://${host}:${i.port}/health/live`, { signal: AbortSignal.timeout(1000) });
        const live = (await r.json()) as Live;
        return { ...i, uptimeS: live.uptimeS, rssBytes: live.rssBytes, pid: live.pid };
      } catch {
        return { ...i, uptimeS: null, rssBytes: null, pid: null };
      }
    }),
  );
}

function human(s: number | null): string {
  if (s === null) return '-';
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}

export function renderStatus(rows: StatusRow[]): string {
  const sorted = [...rows].sort((a, b) => a.service.localeCompare(b.service) || a.id.localeCompare(b.id));
  const table = [
    ['SERVICE', 'INSTANCE', 'VERSION', 'ADDRESS', 'HEALTH', 'UPTIME', 'MEMORY (RSS)'],
    ...sorted.map((r) => [
      r.service,
      r.id,
      r.version,
      `${r.address}:${r.port}`,
      r.status,
      human(r.uptimeS),
      r.rssBytes === null ? '-' : `${(r.rssBytes / 1_048_576).toFixed(1)} MiB`,
    ]),
  ];
  const widths = table[0]!.map((_, c) => Math.max(...table.map((row) => row[c]!.length)));
  const lines = table.map((row) => row.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd());
  const total = rows.reduce((s, r) => s + (r.rssBytes ?? 0), 0);
  lines.push('', `${rows.length} instances, ${rows.filter((r) => r.status === 'passing').length} passing, total RSS ${(total / 1_048_576).toFixed(1)} MiB`);
  return lines.join('\n');
}

export async function status(args: string[]): Promise<number> {
  const cfg = cliConfig();
  const url = process.env.CONCORD_CONTROL_URL || `http://127.0.0.1:${cfg.controlPort}`;
  let rows: StatusRow[];
  try {
    rows = await collectStatus(url);
  } catch (err) {
    process.stderr.write(`concord status: cannot reach the control plane at ${url} (${(err as Error).message}). Is \`npm start\` running? Set CONCORD_CONTROL_PORT if it runs elsewhere.\n`);
    return 1;
  }
  process.stdout.write(args.includes('--json') ? `${JSON.stringify(rows, null, 2)}\n` : `${renderStatus(rows)}\n`);
  return 0;
}
