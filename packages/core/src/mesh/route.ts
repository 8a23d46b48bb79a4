/**
 * Route selection for one VirtualService: which `http[]` entry a request takes, which weighted
 * destination it goes to, and whether it is mirrored. Pure: randomness is injected.
 *
 * ```ts
 * const matcher = compileVirtualService(vs);     // once per config push; regexes compiled here
 * matcher.errors                                  // config problems found (log them); never thrown
 * matcher.match({ method, path, headers })        // → HttpRoute | null (null: no route → 404/503)
 * pickDestination(route, random)                  // → HttpRouteDestination | null
 * mirrorDestination(route, random)                // → Destination | null (fire and forget)
 * checkRegex(pattern)                             // → error text | null (for the config validator)
 * ```
 *
 * Matching follows Istio's VirtualService (istio/api networking/v1alpha3/virtual_service.proto,
 * HTTPMatchRequest) and Envoy's route table (configuration/http/http_conn_man/route_matching):
 * - `http[]` is tried in order; the first route whose `match` accepts the request wins. A route with
 *   an empty `match` list accepts everything. Several match blocks are ORed; the fields inside one
 *   block are ANDed.
 * - `uri` is matched against the path without its query string. `ignoreUriCase` applies to `exact`
 *   and `prefix` only, not to `regex` (Istio's note on `ignore_uri_case`).
 * - `method` and header values are case-sensitive. Header names are lower-case. A header given with
 *   an empty StringMatch (`{}`) only has to be present ("If the value is empty and only the name of
 *   header is specified, presence of the header is checked"). The keys `uri`, `scheme`, `method` and
 *   `authority` under `headers` are ignored, as Istio documents. A header sent several times is
 *   matched as its values joined with ",".
 * - `queryParams`: the first occurrence of the parameter, percent-decoded; `?key` has the value "".
 *   Istio documents `prefix` as unsupported here; Concord accepts it (the validator may reject it).
 * - `regex` is RE2 syntax in Istio and must match the WHOLE value (Envoy `safe_regex` semantics).
 *   Concord runs it on the JavaScript engine as `^(?:pattern)$` with flag `u` (as the control
 *   plane's validator checks it), also accepting the RE2 spellings `(?i)`/`(?s)`/`(?m)`
 *   (leading) and `(?P<name>…)`. Because the JavaScript engine backtracks where
 *   RE2 does not, `checkRegex` refuses what could blow up or is not RE2 anyway: patterns longer
 *   than `MAX_REGEX_CHARS`, nested unbounded quantifiers such as `(a+)+`, back-references and
 *   look-around. A value longer than `MAX_REGEX_INPUT_CHARS` never matches a regex.
 * - A match block whose regex does not compile never matches (the error is in `matcher.errors`);
 *   the rest of the configuration keeps working. Nothing here throws at request time.
 *
 * Weights (`pickDestination`): relative, as in current Istio ("A destination will receive
 * weight/(sum of all weights) requests"); a single destination takes all traffic whatever its
 * weight; weight 0 means never. Istio rejects several destinations whose weights sum to 0
 * (validation: "total destination weight = 0"); should such a route reach the data plane anyway
 * (e.g. all weights omitted), Concord splits evenly rather than failing (see types.ts).
 *
 * Mirroring (`mirrorDestination`): `mirrorPercentage` defaults to 100 when `mirror` is set (Istio).
 */
import type { Destination, HttpMatchRequest, HttpRoute, HttpRouteDestination, StringMatch, VirtualService } from './types.js';
import { type Random, randomChance, randomUnit } from './random.js';
import { headerValue, type MeshRequest, pathOf, queryOf } from './request.js';

export interface RouteMatcher {
  /** Problems found while compiling (bad regexes); the affected match blocks never match. */
  readonly errors: readonly string[];
  match(req: MeshRequest): HttpRoute | null;
}

/** Istio's cap on a regex's length (pkg/config/validation). */
export const MAX_REGEX_CHARS = 1024;
export const MAX_REGEX_INPUT_CHARS = 8192;
/** RE2 refuses repetition counts above 1000. */
const MAX_REPEAT = 1000;

type ValuePredicate = (value: string | undefined) => boolean;

interface CompiledBlock {
  uri: ValuePredicate | null;
  method: ValuePredicate | null;
  headers: Array<[string, ValuePredicate]>;
  query: Array<[string, ValuePredicate]>;
  /** False when something in the block failed to compile: it then never matches. */
  usable: boolean;
}

const IGNORED_HEADER_KEYS = new Set(['uri', 'scheme', 'method', 'authority']);

export function compileVirtualService(vs: VirtualService): RouteMatcher {
  const errors: string[] = [];
  const compiled = vs.http.map((route, r) => ({
    route,
    blocks: route.match.map((m, b) => compileBlock(m, `${vs.name}: http[${r}].match[${b}]`, errors)),
  }));
  return {
    errors,
    match(req) {
      const path = pathOf(req.path);
      let query: Map<string, string> | null = null;
      const lazyQuery = () => (query ??= queryOf(req.path));
      for (const c of compiled) {
        if (c.blocks.length === 0) return c.route;
        if (c.blocks.some((b) => blockMatches(b, req, path, lazyQuery))) return c.route;
      }
      return null;
    },
  };
}

function blockMatches(b: CompiledBlock, req: MeshRequest, path: string, lazyQuery: () => Map<string, string>): boolean {
  if (!b.usable) return false;
  if (b.uri && !b.uri(path)) return false;
  if (b.method && !b.method(req.method)) return false;
  for (const [name, pred] of b.headers) if (!pred(headerValue(req.headers, name))) return false;
  if (b.query.length > 0) {
    const query = lazyQuery();
    for (const [name, pred] of b.query) if (!pred(query.get(name))) return false;
  }
  return true;
}

function compileBlock(m: HttpMatchRequest, where: string, errors: string[]): CompiledBlock {
  const block: CompiledBlock = { uri: null, method: null, headers: [], query: [], usable: true };
  const compile = (sm: StringMatch, what: string, ignoreCase: boolean): ValuePredicate => {
    const r = compileStringMatch(sm, ignoreCase);
    if (typeof r === 'string') {
      errors.push(`${where}.${what}: ${r}`);
      block.usable = false;
      return () => false;
    }
    return r;
  };
  if (m.uri) block.uri = compile(m.uri, 'uri', m.ignoreUriCase === true);
  if (m.method) block.method = compile(m.method, 'method', false);
  for (const [name, sm] of Object.entries(m.headers ?? {})) {
    const lower = name.toLowerCase();
    if (IGNORED_HEADER_KEYS.has(lower)) continue;
    block.headers.push([lower, compile(sm, `headers.${name}`, false)]);
  }
  for (const [name, sm] of Object.entries(m.queryParams ?? {})) block.query.push([name, compile(sm, `queryParams.${name}`, false)]);
  return block;
}

/**
 * One StringMatch as a predicate over a possibly absent value. An empty StringMatch is a
 * presence check. Returns an error text when the regex is refused.
 */
function compileStringMatch(sm: StringMatch, ignoreCase: boolean): ValuePredicate | string {
  if (sm.exact !== undefined) {
    const want = ignoreCase ? sm.exact.toLowerCase() : sm.exact;
    return (v) => v !== undefined && (ignoreCase ? v.toLowerCase() : v) === want;
  }
  if (sm.prefix !== undefined) {
    const want = ignoreCase ? sm.prefix.toLowerCase() : sm.prefix;
    return (v) => v !== undefined && (ignoreCase ? v.toLowerCase() : v).startsWith(want);
  }
  if (sm.regex !== undefined) {
    const re = compileRegex(sm.regex);
    if (typeof re === 'string') return re;
    return (v) => v !== undefined && v.length <= MAX_REGEX_INPUT_CHARS && re.test(v);
  }
  return (v) => v !== undefined;
}

/** Why `pattern` is refused as a route regex, or null when it is accepted. */
export function checkRegex(pattern: string): string | null {
  const r = compileRegex(pattern);
  return typeof r === 'string' ? r : null;
}

function compileRegex(pattern: string): RegExp | string {
  if (pattern.length > MAX_REGEX_CHARS) return `regex longer than ${MAX_REGEX_CHARS} characters`;
  let source = pattern;
  let flags = '';
  const lead = /^\(\?([imsU]+)\)/.exec(source);
  if (lead) {
    const f = lead[1] as string;
    if (f.includes('U')) return 'regex flag U (ungreedy) is not supported';
    flags = [...new Set(f)].join('');
    source = source.slice(lead[0].length);
  }
  source = source.replace(/\(\?P</g, '(?<');
  const unsafe = scanRegex(source);
  if (unsafe) return unsafe;
  try {
    return new RegExp(`^(?:${source})$`, `${flags}u`);
  } catch (e) {
    return `invalid regex: ${(e as Error).message}`;
  }
}

/**
 * A structural scan for what RE2 would reject or a backtracking engine could take exponential
 * time on: back-references, look-around, and an unboundedly repeated group that itself contains
 * an unbounded repetition (star height > 1: `(a+)+`, `(x*y*)*`) or an alternation (`(a|aa)*`;
 * use a character class instead). Polynomial cases such as `.*a.*a.*b` remain possible; the
 * pattern and input length limits bound them.
 */
function scanRegex(src: string): string | null {
  // One frame per open group: does it contain an unbounded repetition / an alternation?
  const stack: Array<{ unbounded: boolean; alt: boolean }> = [{ unbounded: false, alt: false }];
  const top = () => stack[stack.length - 1] as { unbounded: boolean; alt: boolean };
  let i = 0;
  while (i < src.length) {
    const c = src[i] as string;
    let atomEnd = i + 1;
    let group: { unbounded: boolean; alt: boolean } | null = null;
    if (c === '\\') {
      const n = src[i + 1] ?? '';
      if (/[1-9]/.test(n) || n === 'k') return 'back-references are not supported (not RE2)';
      atomEnd = i + 2;
    } else if (c === '[') {
      let j = i + 1;
      if (src[j] === '^') j++;
      if (src[j] === ']') j++;
      while (j < src.length && src[j] !== ']') j += src[j] === '\\' ? 2 : 1;
      if (j >= src.length) return 'invalid regex: unterminated character class';
      atomEnd = j + 1;
    } else if (c === '(') {
      if (src.startsWith('(?=', i) || src.startsWith('(?!', i) || src.startsWith('(?<=', i) || src.startsWith('(?<!', i)) {
        return 'look-around is not supported (not RE2)';
      }
      stack.push({ unbounded: false, alt: false });
      i++;
      continue;
    } else if (c === ')') {
      if (stack.length === 1) return 'invalid regex: unbalanced parenthesis';
      group = stack.pop() as { unbounded: boolean; alt: boolean };
      if (group.unbounded) top().unbounded = true;
      if (group.alt) top().alt = true;
    } else if (c === '|') {
      top().alt = true;
      i++;
      continue;
    } else if (c === '*' || c === '+' || c === '?' || c === '{') {
      // A quantifier not directly after an atom (e.g. at the start) is left to the RegExp parser.
      i++;
      continue;
    }
    const q = quantifierAt(src, atomEnd);
    if (q === 'too-large') return `repetition count above ${MAX_REPEAT}`;
    if (q?.unbounded) {
      if (group?.unbounded) return 'nested unbounded repetition such as (a+)+ is not allowed (catastrophic backtracking)';
      if (group?.alt) return 'alternation inside an unbounded repetition such as (a|aa)* is not allowed; use a character class';
      top().unbounded = true;
    }
    i = q ? q.end : atomEnd;
  }
  if (stack.length !== 1) return 'invalid regex: unbalanced parenthesis';
  return null;
}

function quantifierAt(src: string, at: number): { unbounded: boolean; end: number } | 'too-large' | null {
  const c = src[at];
  let end: number;
  let unbounded: boolean;
  if (c === '*' || c === '+') {
    unbounded = true;
    end = at + 1;
  } else if (c === '?') {
    unbounded = false;
    end = at + 1;
  } else if (c === '{') {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(src.slice(at));
    if (!m) return null;
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === '' ? Number.POSITIVE_INFINITY : Number(m[3]);
    if (min > MAX_REPEAT || (Number.isFinite(max) && max > MAX_REPEAT)) return 'too-large';
    unbounded = !Number.isFinite(max);
    end = at + m[0].length;
  } else {
    return null;
  }
  if (src[end] === '?' || src[end] === '+') end++; // lazy or possessive suffix
  return { unbounded, end };
}

/**
 * The weighted destination for one request. Weights are relative; a lone destination always
 * wins; when every weight is 0 (only reachable past validation) the split is even. Consumes one
 * draw when there is more than one destination.
 */
export function pickDestination(route: HttpRoute, random: Random): HttpRouteDestination | null {
  const dests = route.route;
  if (dests.length === 0) return null;
  if (dests.length === 1) return dests[0] as HttpRouteDestination;
  const weights = dests.map((d) => (Number.isFinite(d.weight) && d.weight > 0 ? d.weight : 0));
  const total = weights.reduce((a, b) => a + b, 0);
  const r = randomUnit(random);
  if (total <= 0) return dests[Math.min(dests.length - 1, Math.floor(r * dests.length))] as HttpRouteDestination;
  let x = r * total;
  for (let i = 0; i < dests.length; i++) {
    const w = weights[i] as number;
    if (w === 0) continue;
    if (x < w) return dests[i] as HttpRouteDestination;
    x -= w;
  }
  // Floating-point remainder: the last destination with a positive weight.
  for (let i = dests.length - 1; i >= 0; i--) if ((weights[i] as number) > 0) return dests[i] as HttpRouteDestination;
  return null;
}

/** Where to send a fire-and-forget copy of this request, if anywhere. */
export function mirrorDestination(route: HttpRoute, random: Random): Destination | null {
  if (!route.mirror) return null;
  return randomChance(random, route.mirrorPercentage ?? 100) ? route.mirror : null;
}
