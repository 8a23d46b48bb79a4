/**
 * `concord apply -f <file|->`: sends a YAML stream of Istio resources to the control plane
 * (POST /api/config) and prints, per resource, whether it was applied — or every problem with
 * its field path. All or nothing: one bad resource and nothing is applied. Exit 1 on rejection.
 */
import { readFileSync } from 'node:fs';
import { cliConfig } from './config.js';

const MAX_BYTES = 1_048_576;
const TIMEOUT_MS = 15_000;

/** The control plane's URL: CONCORD_CONTROL_URL, else 127.0.0.1 on CONCORD_CONTROL_PORT. */
export function controlUrl(): string {
  return (process.env.CONCORD_CONTROL_URL || `http://127.0.0.1:${cliConfig().controlPort}`).replace(/\/+$/, '');
}

interface ApiError {
  path: string;
  message: string;
  resource?: string;
  field?: string;
  source?: string;
  line?: number;
  col?: number;
}

interface Rejection {
  detail?: string;
  errors?: ApiError[];
  rejected?: Array<{ kind: string; name: string; reason: string }>;
}

export const APPLY_USAGE = 'usage: concord apply -f <file.yaml | ->   (a YAML stream of VirtualService, DestinationRule, PeerAuthentication, AuthorizationPolicy, Telemetry)';

function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    process.stdin.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BYTES) reject(new Error(`stdin is larger than ${MAX_BYTES} bytes`));
      else chunks.push(c);
    });
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', reject);
  });
}

function where(e: ApiError): string {
  const line = e.line !== undefined ? ` (line ${e.line}${e.col !== undefined ? `, column ${e.col}` : ''})` : '';
  return `${e.field || (/\(document \d+\)$/.test(e.path) ? 'YAML' : '(document)')}${line}`;
}

/** Renders a rejection: each resource, then each of its problems with the field path. */
export function renderRejection(body: Rejection): string {
  const lines: string[] = [];
  const errors = body.errors ?? [];
  const seen = new Set<string>();
  for (const r of body.rejected ?? []) {
    const key = `${r.kind}/${r.name}`;
    seen.add(key);
    lines.push(`${key} rejected`);
    const mine = errors.filter((e) => e.resource === key);
    if (mine.length === 0) lines.push(`  ${r.reason}`);
    for (const e of mine) lines.push(`  ${where(e)}: ${e.message}`);
  }
  // Problems in documents without a usable name, or in resources already in force.
  for (const e of errors) {
    if (e.resource && seen.has(e.resource)) continue;
    const src = e.source && e.source !== 'cli' && e.source !== 'api' ? ` [${e.source}]` : '';
    lines.push(`${e.resource ?? e.path}${src}: ${where(e)}: ${e.message}`);
  }
  return lines.join('\n');
}

export async function apply(args: string[]): Promise<number> {
  let file: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-f' || a === '--filename') file = args[++i];
    else if (a?.startsWith('--filename=')) file = a.slice('--filename='.length);
    else {
      process.stderr.write(`concord apply: unexpected argument "${a}"\n${APPLY_USAGE}\n`);
      return 2;
    }
  }
  if (!file) {
    process.stderr.write(`${APPLY_USAGE}\n`);
    return 2;
  }
  let text: string;
  try {
    text = file === '-' ? await readStdin() : readFileSync(file, 'utf8');
  } catch (err) {
    process.stderr.write(`concord apply: cannot read ${file === '-' ? 'stdin' : file}: ${(err as Error).message}\n`);
    return 1;
  }
  if (Buffer.byteLength(text) > MAX_BYTES) {
    process.stderr.write(`concord apply: ${file} is larger than ${MAX_BYTES} bytes\n`);
    return 1;
  }
  const url = controlUrl();
  let res: Response;
  try {
    res = await fetch(`${url}/api/config`, {
      method: 'POST',
      headers: { 'content-type': 'application/yaml', 'x-concord-source': 'cli' },
      body: text,
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    process.stderr.write(
      `concord apply: cannot reach the control plane at ${url} (${(err as Error).message}). Is \`npm start\` running? Set CONCORD_CONTROL_URL or CONCORD_CONTROL_PORT if it runs elsewhere.\n`,
    );
    return 1;
  }
  const raw = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    body = { detail: raw.slice(0, 500) };
  }
  if (res.status === 200) {
    const ok = body as { version: number; applied: Array<{ kind: string; name: string; action: string }>; deleted: Array<{ kind: string; name: string }> };
    for (const a of ok.applied) process.stdout.write(`${a.kind}/${a.name} ${a.action}\n`);
    for (const d of ok.deleted ?? []) process.stdout.write(`${d.kind}/${d.name} deleted\n`);
    process.stdout.write(`configuration version ${ok.version}\n`);
    return 0;
  }
  const rej = body as Rejection;
  process.stderr.write(`concord apply: ${rej.detail ?? `the control plane answered ${res.status}`}\n`);
  if (res.status === 400 && (rej.errors || rej.rejected)) process.stdout.write(`${renderRejection(rej)}\n`);
  return 1;
}
