/**
 * A small parser for the Prometheus text exposition format (version 0.0.4): the sample lines
 * of the families the console needs, nothing else. Pure; never throws on bad input — malformed
 * lines are counted and skipped, as a scraper must survive whatever a target sends.
 */

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface ParseResult {
  samples: PromSample[];
  /** Lines that looked like samples of a kept family but could not be read. */
  malformed: number;
  /** True when `maxSamples` stopped the parse early. */
  truncated: boolean;
}

const MAX_LABELS = 64;

/** [A-Za-z0-9_], plus ':' in metric names. */
function isNameChar(code: number, colon: boolean): boolean {
  return (code >= 97 && code <= 122) || (code >= 65 && code <= 90) || (code >= 48 && code <= 57) || code === 95 || (colon && code === 58);
}
const MAX_LABEL_VALUE_CHARS = 1024;

/** Prometheus' float syntax, including the special values. */
export function parseValue(raw: string): number | null {
  switch (raw) {
    case 'NaN':
      return Number.NaN;
    case '+Inf':
    case 'Inf':
      return Number.POSITIVE_INFINITY;
    case '-Inf':
      return Number.NEGATIVE_INFINITY;
    default: {
      if (raw === '' || !/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw)) return null;
      return Number(raw);
    }
  }
}

/**
 * Reads `{a="x",b="y\"z"}` starting at `text[start] === '{'`. Returns the labels and the index
 * just past `}`, or null when the label set is malformed.
 */
function parseLabels(line: string, start: number): { labels: Record<string, string>; end: number } | null {
  const labels: Record<string, string> = {};
  let i = start + 1;
  let count = 0;
  for (;;) {
    while (line[i] === ' ') i++;
    if (line[i] === '}') return { labels, end: i + 1 };
    const nameStart = i;
    while (i < line.length && isNameChar(line.charCodeAt(i), false)) i++;
    const name = line.slice(nameStart, i);
    if (name === '' || /^\d/.test(name)) return null;
    while (line[i] === ' ') i++;
    if (line[i] !== '=') return null;
    i++;
    while (line[i] === ' ') i++;
    if (line[i] !== '"') return null;
    i++;
    let value = '';
    for (;;) {
      const ch = line[i];
      if (ch === undefined) return null;
      if (ch === '"') break;
      if (ch === '\\') {
        const next = line[i + 1];
        if (next === 'n') value += '\n';
        else if (next === '\\' || next === '"') value += next;
        else return null;
        i += 2;
      } else {
        value += ch;
        i++;
      }
      if (value.length > MAX_LABEL_VALUE_CHARS) return null;
    }
    i++; // closing quote
    if (++count > MAX_LABELS) return null;
    labels[name] = value;
    while (line[i] === ' ') i++;
    if (line[i] === ',') {
      i++;
      continue;
    }
    if (line[i] === '}') return { labels, end: i + 1 };
    return null;
  }
}

/**
 * Parses the sample lines whose metric name `keep` accepts (comments, HELP and TYPE lines and
 * other families are skipped before their labels are read, so unwanted families cost little).
 */
export function parsePromText(text: string, keep: (name: string) => boolean, maxSamples = 200_000): ParseResult {
  const samples: PromSample[] = [];
  let malformed = 0;
  let pos = 0;
  while (pos < text.length) {
    let nl = text.indexOf('\n', pos);
    if (nl === -1) nl = text.length;
    let line = text.slice(pos, nl);
    pos = nl + 1;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    const first = line.trimStart();
    if (first === '' || first.startsWith('#')) continue;
    line = first;
    let i = 0;
    while (i < line.length && isNameChar(line.charCodeAt(i), true)) i++;
    const name = line.slice(0, i);
    if (name === '' || !keep(name)) continue;
    let labels: Record<string, string> = {};
    if (line[i] === '{') {
      const l = parseLabels(line, i);
      if (!l) {
        malformed++;
        continue;
      }
      labels = l.labels;
      i = l.end;
    }
    if (line[i] !== ' ' && line[i] !== '\t') {
      malformed++;
      continue;
    }
    const rest = line
      .slice(i)
      .trim()
      .split(/[ \t]+/);
    const value = parseValue(rest[0] ?? '');
    if (value === null || rest.length > 2) {
      malformed++;
      continue;
    }
    if (samples.length >= maxSamples) return { samples, malformed, truncated: true };
    samples.push({ name, labels, value });
  }
  return { samples, malformed, truncated: false };
}
