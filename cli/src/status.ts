/**
 * `concord status`: a table of instances with version, address, health, uptime and memory.
 *
 * Memory is each instance's RSS as it reports it, and — for instances running on this machine —
 * its PSS read from /proc: RSS counts every page a process maps, so the pages its processes share
 * (the Node.js binary's code, ~40 MiB in every one of them) are counted once per process in a
 * sum of RSS; PSS divides each shared page among the processes that map it, so a sum of PSS is
 * what the system holds.
 */
import { readFileSync } from 'node:fs';
import { cliConfig } from './config.js';
import type { ArgSpec } from './bench/args.js';

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
  /** Proportional set size, when the instance runs on this machine and /proc can be read; else null. */
  pssBytes: number | null;
  pid: number | null;
}

/** The `Pss:` line of a /proc/<pid>/smaps_rollup, in bytes (the file gives kB), or null. */
export function pssBytesOf(smapsRollup: string): number | null {
  const m = /^Pss:\s+(\d+) kB$/m.exec(smapsRollup);
  return m ? Number(m[1]) * 1024 : null;
}

/**
 * An instance's PSS when `pid` is one of this machine's processes and is the instance (its
 * environment names it: a pid reported by another host may belong to anything here), else null.
 */
function localPssBytes(pid: number, instanceId: string): number | null {
  if (!runsInstance(pid, instanceId)) return null;
  try {
    return pssBytesOf(readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1'));
  } catch {
    return null; // not ours to read, or gone
  }
}

/** Whether `pid` is a process of this machine running the instance (its environment names it). */
export function runsInstance(pid: number, instanceId: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(`CONCORD_INSTANCE_ID=${instanceId}`);
  } catch {
    return false; // not Linux, not ours to read, or gone
  }
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
        return { ...i, uptimeS: live.uptimeS, rssBytes: live.rssBytes, pssBytes: localPssBytes(live.pid, i.id), pid: live.pid };
      } catch {
        return { ...i, uptimeS: null, rssBytes: null, pssBytes: null, pid: null };
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

function mib(bytes: number | null): string {
  return bytes === null ? '-' : `${(bytes / 1_048_576).toFixed(1)} MiB`;
}

export function renderStatus(rows: StatusRow[]): string {
  const sorted = [...rows].sort((a, b) => a.service.localeCompare(b.service) || a.id.localeCompare(b.id));
  const table = [
    ['SERVICE', 'INSTANCE', 'VERSION', 'ADDRESS', 'HEALTH', 'UPTIME', 'MEMORY (RSS)', 'PSS'],
    ...sorted.map((r) => [
      r.service,
      r.id,
      r.version,
      `${r.address}:${r.port}`,
      r.status,
      human(r.uptimeS),
      mib(r.rssBytes),
      mib(r.pssBytes),
    ]),
  ];
  const widths = table[0]!.map((_, c) => Math.max(...table.map((row) => row[c]!.length)));
  const lines = table.map((row) => row.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd());
  const total = rows.reduce((s, r) => s + (r.rssBytes ?? 0), 0);
  lines.push('', `${rows.length} instances, ${rows.filter((r) => r.status === 'passing').length} passing, total RSS ${mib(total)}`);
  const withPss = rows.filter((r) => r.pssBytes !== null);
  if (withPss.length > 0) {
    const pss = withPss.reduce((s, r) => s + (r.pssBytes as number), 0);
    const of = withPss.length === rows.length ? '' : ` (${withPss.length} of ${rows.length} instances: the others are not on this machine)`;
    lines.push(`total PSS ${mib(pss)}${of}: shared pages counted once, where a sum of RSS counts them in every process`);
  }
  return lines.join('\n');
}

export const STATUS_ARGS = { json: { kind: 'flag', help: 'JSON instead of a table' } } satisfies ArgSpec;

export async function status(opts: { json: boolean }): Promise<number> {
  const cfg = cliConfig();
  const url = process.env.CONCORD_CONTROL_URL || `http://127.0.0.1:${cfg.controlPort}`;
  let rows: StatusRow[];
  try {
    rows = await collectStatus(url);
  } catch (err) {
    process.stderr.write(`concord status: cannot reach the control plane at ${url} (${(err as Error).message}). Is \`npm start\` running? Set CONCORD_CONTROL_PORT if it runs elsewhere.\n`);
    return 1;
  }
  process.stdout.write(opts.json ? `${JSON.stringify(rows, null, 2)}\n` : `${renderStatus(rows)}\n`);
  return 0;
}
