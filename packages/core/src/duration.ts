/**
 * Go-style durations as Consul and Istio write them: "10s", "1m30s", "250ms", "1.5h", "0".
 * Parsing is strict: a value that is not a duration returns an error string instead of a guess.
 */
const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const PART = /^(\d+(?:\.\d+)?|\.\d+)(ns|us|µs|ms|s|m|h)/;

export type DurationResult = { ok: true; ms: number } | { ok: false; error: string };

export function parseDuration(input: unknown): DurationResult {
  if (typeof input !== 'string') return { ok: false, error: 'must be a duration string such as "10s" or "250ms"' };
  const text = input.trim();
  if (text === '0') return { ok: true, ms: 0 };
  if (text.length === 0 || text.length > 64) return { ok: false, error: `"${input}" is not a duration (use e.g. "10s", "250ms", "1m30s")` };
  let rest = text;
  let total = 0;
  while (rest.length > 0) {
    const m = PART.exec(rest);
    if (!m) return { ok: false, error: `"${input}" is not a duration (use e.g. "10s", "250ms", "1m30s")` };
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
    rest = rest.slice(m[0].length);
  }
  if (!Number.isFinite(total)) return { ok: false, error: `"${input}" is too large` };
  return { ok: true, ms: total };
}

/** Parses or throws; for values already validated. */
export function durationMs(input: string): number {
  const r = parseDuration(input);
  if (!r.ok) throw new Error(r.error);
  return r.ms;
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
