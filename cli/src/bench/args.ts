/** Strict `--name value` / `--name=value` / `--flag` parsing with named errors. */
import { formatDuration, httpBaseUrl, parseDuration } from '@concord/core';

export class ArgError extends Error {
  override name = 'ArgError';
}

export type ArgSpec = Record<string, { kind: 'int' | 'duration' | 'string' | 'url' | 'flag'; default?: number | string | boolean; min?: number; max?: number; help: string }>;

type ArgValue<E extends ArgSpec[string]> = E['kind'] extends 'flag' ? boolean : E['kind'] extends 'string' | 'url' ? string : number;

/**
 * The options given, else their defaults. An option without a default that was not given is
 * undefined (a flag is false), so a command can tell `--rate 0` from no `--rate` at all.
 */
export type ParsedArgs<S extends ArgSpec> = {
  [K in keyof S]: S[K] extends { kind: 'flag' } ? boolean : S[K] extends { default: number | string } ? ArgValue<S[K]> : ArgValue<S[K]> | undefined;
};

export function parseArgs<S extends ArgSpec>(argv: string[], spec: S): ParsedArgs<S> {
  const out: Record<string, unknown> = {};
  for (const [k, s] of Object.entries(spec)) out[k] = s.default ?? (s.kind === 'flag' ? false : undefined);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (!a.startsWith('--')) throw new ArgError(`unexpected argument "${a}"`);
    const [rawName, inline] = a.slice(2).split('=', 2) as [string, string | undefined];
    const s = spec[rawName];
    if (!s) {
      const known = Object.keys(spec).map((k) => `--${k}`);
      throw new ArgError(`unknown option --${rawName}; ${known.length > 0 ? `known: ${known.join(', ')}` : 'this command takes none'}`);
    }
    if (s.kind === 'flag') {
      out[rawName] = inline === undefined ? true : inline !== 'false';
      continue;
    }
    const v = inline ?? argv[++i];
    if (v === undefined) throw new ArgError(`--${rawName} needs a value (${s.help})`);
    if (s.kind === 'string') out[rawName] = v;
    else if (s.kind === 'url') out[rawName] = httpUrl(rawName, v);
    else if (s.kind === 'duration') {
      const d = parseDuration(v);
      if (!d.ok || d.ms <= 0) throw new ArgError(`--${rawName}=${v}: ${d.ok ? 'must be positive' : d.error}`);
      out[rawName] = d.ms;
    } else {
      if (!/^\d+$/.test(v)) throw new ArgError(`--${rawName}=${v} is not a whole number (${s.help})`);
      const n = Number(v);
      if ((s.min !== undefined && n < s.min) || (s.max !== undefined && n > s.max)) throw new ArgError(`--${rawName}=${v} must be between ${s.min} and ${s.max}`);
      out[rawName] = n;
    }
  }
  return out as never;
}

/** An absolute http(s) URL, without trailing slashes (paths are appended to it). */
function httpUrl(name: string, v: string): string {
  const url = httpBaseUrl(v);
  if (url === null) throw new ArgError(`--${name}=${v} is not an http(s) URL such as http://127.0.0.1:8080`);
  return url;
}

/** A default as a user would type it: a duration as "1m", not as milliseconds. */
function defaultText(s: ArgSpec[string]): string {
  return s.kind === 'duration' && typeof s.default === 'number' ? formatDuration(s.default) : String(s.default);
}

export function usage(spec: ArgSpec): string {
  return Object.entries(spec)
    .map(([k, s]) => `  --${k}${s.kind === 'flag' ? '' : ` <${s.kind}>`}  `.padEnd(28) + `${s.help}${s.default !== undefined && s.default !== '' ? ` (default ${defaultText(s)})` : ''}`)
    .join('\n');
}
