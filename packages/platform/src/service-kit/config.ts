/**
 * Configuration from the environment, validated at start. Each variable has a parser that
 * names the accepted form, so a bad value stops the process with a message saying how to fix it.
 */
import { httpBaseUrl, parseDuration } from '@concord/core';

export type Env = Record<string, string | undefined>;

export interface VarSpec<T> {
  /** The environment variable, e.g. CONCORD_GATEWAY_PORT. */
  env: string;
  /** What an accepted value looks like, shown in errors. */
  accepts: string;
  default: T;
  parse(raw: string): { ok: true; value: T } | { ok: false };
}

export type Schema = Record<string, VarSpec<unknown>>;
export type ConfigOf<S extends Schema> = { [K in keyof S]: S[K] extends VarSpec<infer T> ? T : never };

export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
}

export function loadConfig<S extends Schema>(schema: S, env: Env = process.env): ConfigOf<S> {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, spec] of Object.entries(schema)) {
    const raw = env[spec.env];
    if (raw === undefined || raw === '') {
      out[key] = spec.default;
      continue;
    }
    const r = spec.parse(raw);
    if (r.ok) out[key] = r.value;
    else problems.push(`${spec.env}=${JSON.stringify(raw)} is invalid: expected ${spec.accepts}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out as ConfigOf<S>;
}

const INT = /^-?\d+$/;
const DECIMAL = /^(\d+(\.\d*)?|\.\d+)$/;

/** A number written as `pattern` allows (spaces around ignored), from min to max. */
function numberVar(env: string, def: number, min: number, max: number, pattern: RegExp, accepts: string): VarSpec<number> {
  return {
    env,
    default: def,
    accepts,
    parse(raw) {
      const text = raw.trim();
      if (!pattern.test(text)) return { ok: false };
      const n = Number(text);
      return n >= min && n <= max ? { ok: true, value: n } : { ok: false };
    },
  };
}

export function intVar(env: string, def: number, min: number, max: number): VarSpec<number> {
  return numberVar(env, def, min, max, INT, `an integer from ${min} to ${max}`);
}

/** A decimal number such as 0.25 (no exponent, no sign: ranges here start at 0 or above). */
export function decimalVar(env: string, def: number, min: number, max: number): VarSpec<number> {
  return numberVar(env, def, min, max, DECIMAL, `a decimal number from ${min} to ${max}, such as ${(min + max) / 4}`);
}

export function portVar(env: string, def: number): VarSpec<number> {
  return { ...intVar(env, def, 0, 65535), accepts: 'a TCP port, an integer from 0 to 65535 (0 picks a free port)' };
}

export function stringVar(env: string, def: string, pattern?: RegExp, accepts = 'a non-empty string'): VarSpec<string> {
  return {
    env,
    default: def,
    accepts,
    parse(raw) {
      return pattern && !pattern.test(raw) ? { ok: false } : { ok: true, value: raw };
    },
  };
}

export function enumVar<T extends string>(env: string, def: T, values: readonly T[]): VarSpec<T> {
  return {
    env,
    default: def,
    accepts: `one of ${values.join(', ')}`,
    // As OpenTelemetry reads its enum variables: any case, spaces around ignored.
    parse(raw) {
      const given = raw.trim().toLowerCase();
      const value = values.find((v) => v.toLowerCase() === given);
      return value === undefined ? { ok: false } : { ok: true, value };
    },
  };
}

export function boolVar(env: string, def: boolean): VarSpec<boolean> {
  return {
    env,
    default: def,
    accepts: 'true or false (also 1/0, yes/no)',
    parse(raw) {
      const v = raw.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(v)) return { ok: true, value: true };
      if (['false', '0', 'no', 'off'].includes(v)) return { ok: true, value: false };
      return { ok: false };
    },
  };
}

export function durationVar(env: string, defMs: number, minMs = 0, maxMs = 24 * 3_600_000): VarSpec<number> {
  return {
    env,
    default: defMs,
    accepts: `a duration such as "500ms", "10s" or "1m30s", between ${minMs} ms and ${maxMs} ms`,
    parse(raw) {
      const r = parseDuration(raw);
      return r.ok && r.ms >= minMs && r.ms <= maxMs ? { ok: true, value: r.ms } : { ok: false };
    },
  };
}

export function urlVar(env: string, def: string): VarSpec<string> {
  return {
    env,
    default: def,
    accepts: 'an absolute http(s) URL such as http://127.0.0.1:7700',
    parse(raw) {
      const value = httpBaseUrl(raw);
      return value === null ? { ok: false } : { ok: true, value };
    },
  };
}

/** Prints a configuration error the way an operator needs it and exits non-zero. */
export function exitOnConfigError(err: unknown, service: string): never {
  if (err instanceof ConfigError) {
    process.stderr.write(`${service}: ${err.message}\nFix the variable(s) above or unset them to use the defaults.\n`);
    process.exit(78); // EX_CONFIG
  }
  throw err;
}
