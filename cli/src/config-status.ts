/**
 * `concord config status`: every mesh configuration resource, applied or rejected with its
 * reason (no rule is ever silently ignored), then which configuration version each data plane
 * acknowledged.
 */
import type { mesh } from '@concord/core';
import { controlUrl } from './apply.js';
import { parseArgs } from './bench/args.js';
import { STATUS_ARGS } from './status.js';

interface ResourceStatus {
  kind: string;
  name: string;
  state: 'applied' | 'rejected';
  version: number;
  source: string;
  reason?: string;
  inForceVersion?: number;
}

interface InstanceStatus {
  instanceId: string;
  service: string | null;
  version: number;
  current: boolean;
  error?: string;
  ackedAt: string;
  /** The instance's tracing as it reported it (null or absent: it did not say). */
  tracing?: mesh.TracingReport | null;
}

export interface ConfigStatus {
  version: number;
  resources: ResourceStatus[];
  instances: InstanceStatus[];
}

const MAX_REASON = 160;

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) =>
    r
      .map((cell, c) => cell.padEnd(widths[c]!))
      .join('  ')
      .trimEnd(),
  );
}

function clip(s: string): string {
  const one = s.replace(/\s+/g, ' ');
  return one.length > MAX_REASON ? `${one.slice(0, MAX_REASON - 1)}…` : one;
}

/**
 * "5 % (telemetry name)", "environment" (OTEL_TRACES_SAMPLER decides), "off", or "-" when not
 * reported; ", not exported" when OTEL_TRACES_EXPORTER=none keeps the spans from the trace store.
 */
export function tracingOf(i: Pick<InstanceStatus, 'tracing'>): string {
  if (!i.tracing) return '-';
  if (!i.tracing.enabled) return 'off';
  const sampling = i.tracing.sampling ? `${i.tracing.sampling.percentage} % (${i.tracing.sampling.telemetry})` : 'environment';
  return i.tracing.exporter === 'none' ? `${sampling}, not exported` : sampling;
}

export function renderConfigStatus(s: ConfigStatus): string {
  const lines: string[] = [`configuration version ${s.version}`, ''];
  if (s.resources.length === 0) lines.push('no mesh configuration resources (concord apply -f <file.yaml>)');
  else {
    lines.push(
      ...table([
        ['KIND', 'NAME', 'STATE', 'VERSION', 'SOURCE', 'REASON'],
        ...s.resources.map((r) => [
          r.kind,
          r.name,
          r.state === 'rejected' && r.inForceVersion !== undefined ? 'rejected (previous in force)' : r.state,
          String(r.version),
          r.source,
          r.reason ? clip(r.reason) : '',
        ]),
      ]),
    );
  }
  lines.push('');
  if (s.instances.length === 0) lines.push('no data plane has acknowledged a configuration yet');
  else {
    lines.push(
      ...table([
        ['INSTANCE', 'SERVICE', 'ACKED VERSION', 'STATE', 'TRACE SAMPLING', 'ACKED AT', 'ERROR'],
        ...s.instances.map((i) => [
          i.instanceId,
          i.service ?? '-',
          String(i.version),
          i.error ? 'refused' : i.current ? 'current' : 'behind',
          tracingOf(i),
          i.ackedAt,
          i.error ? clip(i.error) : '',
        ]),
      ]),
    );
  }
  const rejected = s.resources.filter((r) => r.state === 'rejected').length;
  lines.push(
    '',
    `${s.resources.length} resources, ${rejected} rejected; ${s.instances.filter((i) => i.current).length} of ${s.instances.length} data planes current`,
  );
  return lines.join('\n');
}

export const CONFIG_USAGE = 'usage: concord config status [--json]\n';

export async function configCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'status') {
    process.stderr.write(CONFIG_USAGE);
    return 2;
  }
  const opts = parseArgs(rest, STATUS_ARGS);
  const url = controlUrl();
  let body: ConfigStatus;
  try {
    const res = await fetch(`${url}/api/config/status`, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`the control plane answered ${res.status}`);
    body = (await res.json()) as ConfigStatus;
  } catch (err) {
    process.stderr.write(`concord config status: cannot reach the control plane at ${url} (${(err as Error).message}). Is \`npm start\` running?\n`);
    return 1;
  }
  process.stdout.write(opts.json ? `${JSON.stringify(body, null, 2)}\n` : `${renderConfigStatus(body)}\n`);
  return 0;
}
