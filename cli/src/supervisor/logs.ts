/** Prefixes and colours each process's log lines; pino JSON lines are shown compactly. */
const PALETTE = [36, 33, 35, 32, 34, 91, 92, 93, 94, 95, 96];
const LEVEL_COLOR: Record<string, number> = { fatal: 31, error: 31, warn: 33, info: 32, debug: 90, trace: 90 };
const SKIP = new Set(['level', 'time', 'msg', 'service', 'instance', 'version', 'pid', 'hostname']);
const MAX_LINE_CHARS = 4000;

export type LineFormatter = (source: string, line: string) => string

export function makeFormatter(opts: { color: boolean; raw: boolean; width: number }): LineFormatter {
  const colors = new Map<string, number>();
  const paint = (code: number, s: string) => (opts.color ? `\x1b[${code}m${s}\x1b[0m` : s);
  return (source, line) => {
    let color = colors.get(source);
    if (color === undefined) {
      color = PALETTE[colors.size % PALETTE.length] as number;
      colors.set(source, color);
    }
    const prefix = paint(color, `${source.padEnd(opts.width)} │`);
    const text = line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}…` : line;
    if (opts.raw || !text.startsWith('{')) return `${prefix} ${text}`;
    try {
      const o = JSON.parse(text) as Record<string, unknown>;
      const level = String(o.level ?? 'info');
      const time = typeof o.time === 'string' ? o.time.slice(11, 23) : '';
      const extra = Object.entries(o)
        .filter(([k]) => !SKIP.has(k))
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      return `${prefix} ${time} ${paint(LEVEL_COLOR[level] ?? 0, level.toUpperCase().padEnd(5))} ${String(o.msg ?? '')}${extra ? ` ${paint(90, extra)}` : ''}`;
    } catch {
      return `${prefix} ${text}`;
    }
  };
}
