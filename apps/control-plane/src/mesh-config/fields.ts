/**
 * Strict readers for Istio resources parsed from YAML. Every reader records a problem with the
 * field's path (Kubernetes' field-path style: `spec.http[0].match[0].headers[end-user].exact`)
 * instead of guessing; unknown fields are errors (as `kubectl apply --validate=strict`), and
 * fields Istio has but Concord does not implement are errors that say so, never dropped.
 * Pure: no I/O.
 */
import { parseDuration } from '@concord/core';

/** A field name, a list index, or a map key (printed as `[key]`). */
export type Segment = string | number | { key: string };

export interface Issue {
  /** `VirtualService/reviews`, or `document 3` when the document has no usable kind and name. */
  resource: string;
  /** Field path inside the resource, e.g. `spec.http[0].route[1].weight` (empty: the whole document). */
  field: string;
  message: string;
  /** The path as segments (to find the line in the YAML source). */
  at: Segment[];
}

export function fieldPath(at: readonly Segment[]): string {
  let out = '';
  for (const s of at) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (typeof s === 'object') out += `[${s.key}]`;
    else out += out.length === 0 ? s : `.${s}`;
  }
  return out;
}

/** Collects the problems of one resource. */
export class Checker {
  readonly issues: Issue[] = [];
  constructor(public resource: string) {}

  error(at: readonly Segment[], message: string): void {
    this.issues.push({ resource: this.resource, field: fieldPath(at), message, at: [...at] });
  }

  get ok(): boolean {
    return this.issues.length === 0;
  }
}

export type Obj = Record<string, unknown>;

/**
 * Sets an own, enumerable property — also for a key such as `__proto__`, which plain
 * assignment would turn into a prototype change (and the entry would silently vanish).
 */
export function setKey<T>(o: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Keys Istio knows that Concord refuses, with the reason shown to the user. */
export type Unsupported = Readonly<Record<string, string>>;

export const NOT_SUPPORTED = 'is not supported by Concord';

function suggestion(key: string, known: readonly string[]): string {
  const lower = key.toLowerCase().replace(/[-_]/g, '');
  const hit = known.find((k) => k.toLowerCase() === lower);
  return hit ? ` (did you mean "${hit}"?)` : ` (known fields: ${known.join(', ')})`;
}

/**
 * Reads a mapping with a closed set of fields. Null (`field:` with no value) counts as absent,
 * as in Kubernetes. Returns null when the value is absent or not a mapping.
 */
export function object(c: Checker, v: unknown, at: Segment[], known: readonly string[], unsupported: Unsupported = {}): Obj | null {
  if (v === undefined || v === null) return null;
  if (!isObj(v)) {
    c.error(at, 'must be a mapping (an object)');
    return null;
  }
  const out: Obj = {};
  for (const [k, val] of Object.entries(v)) {
    const reason = Object.hasOwn(unsupported, k) ? unsupported[k] : undefined;
    if (reason !== undefined) c.error([...at, k], `${NOT_SUPPORTED}: ${reason}`);
    else if (!known.includes(k)) c.error([...at, k], `unknown field${suggestion(k, known)}`);
    else if (val !== null && val !== undefined) setKey<unknown>(out, k, val);
  }
  return out;
}

export function required(c: Checker, o: Obj, key: string, at: Segment[]): unknown {
  const v = o[key];
  if (v === undefined) c.error([...at, key], 'is required');
  return v;
}

export function string(c: Checker, v: unknown, at: Segment[], opts: { max?: number; nonEmpty?: boolean } = {}): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') {
    c.error(at, `must be a string${typeof v === 'number' || typeof v === 'boolean' ? ` (quote it: "${String(v)}")` : ''}`);
    return undefined;
  }
  const max = opts.max ?? 1024;
  if (v.length > max) {
    c.error(at, `must be at most ${max} characters`);
    return undefined;
  }
  if (opts.nonEmpty && v.length === 0) {
    c.error(at, 'must not be empty');
    return undefined;
  }
  return v;
}

export function boolean(c: Checker, v: unknown, at: Segment[]): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') {
    c.error(at, 'must be true or false');
    return undefined;
  }
  return v;
}

export const INT32_MAX = 2_147_483_647;
export const UINT32_MAX = 4_294_967_295;

export function integer(c: Checker, v: unknown, at: Segment[], min: number, max: number, what = ''): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    c.error(at, `must be an integer${what}`);
    return undefined;
  }
  if (v < min || v > max) {
    c.error(at, v < min && min === 0 ? `must not be negative (got ${v})` : `must be from ${min} to ${max} (got ${v})`);
    return undefined;
  }
  return v;
}

/**
 * Istio's durations: google.protobuf.Duration read by the legacy jsonpb decoder Istio uses
 * (pkg/util/protomarshal), which accepts Go time.ParseDuration strings: "10s", "250ms",
 * "1m30s", "1.5s". Istio's ValidateDuration (pkg/config/validation/agent) requires at least
 * 1ms and millisecond precision; the CRDs repeat it as `duration(self) >= duration('1ms')`.
 */
export function duration(c: Checker, v: unknown, at: Segment[], opts: { allowZero?: boolean } = {}): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') {
    c.error(at, 'must be a duration string such as "10s" or "250ms"');
    return undefined;
  }
  if (/^\s*-/.test(v)) {
    c.error(at, `"${v}" is negative; durations must be at least 1ms`);
    return undefined;
  }
  const r = parseDuration(v);
  if (!r.ok) {
    c.error(at, `${r.error}; units are h, m, s, ms, us, ns`);
    return undefined;
  }
  if (r.ms === 0 && opts.allowZero) return 0;
  if (r.ms < 1) {
    c.error(at, `"${v}" is shorter than 1ms; Istio requires durations of at least 1ms`);
    return undefined;
  }
  if (Math.abs(r.ms - Math.round(r.ms)) > 1e-9) {
    c.error(at, `"${v}" is not a whole number of milliseconds; Istio supports only millisecond precision`);
    return undefined;
  }
  if (r.ms > 315_576_000_000_000) {
    c.error(at, `"${v}" is longer than protobuf's Duration allows (10000 years)`);
    return undefined;
  }
  return Math.round(r.ms);
}

export function list(c: Checker, v: unknown, at: Segment[], opts: { max?: number; nonEmpty?: boolean } = {}): unknown[] | null {
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v)) {
    c.error(at, 'must be a list');
    return null;
  }
  const max = opts.max ?? 256;
  if (v.length > max) {
    c.error(at, `must have at most ${max} entries`);
    return null;
  }
  if (opts.nonEmpty && v.length === 0) {
    c.error(at, 'must not be empty');
    return null;
  }
  return v;
}

/** A list of non-empty strings (Istio's CheckEmptyValues). */
export function stringList(c: Checker, v: unknown, at: Segment[], opts: { max?: number; nonEmpty?: boolean; maxLength?: number } = {}): string[] | undefined {
  const items = list(c, v, at, opts);
  if (!items) return undefined;
  const out: string[] = [];
  items.forEach((item, i) => {
    const s = string(c, item, [...at, i], { max: opts.maxLength ?? 1024, nonEmpty: true });
    if (s !== undefined) out.push(s);
  });
  return out.length === items.length ? out : undefined;
}

/** A map of string to string. */
export function stringMap(c: Checker, v: unknown, at: Segment[], opts: { maxKeys?: number; maxLength?: number } = {}): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) {
    c.error(at, 'must be a mapping of strings');
    return undefined;
  }
  const entries = Object.entries(v);
  const maxKeys = opts.maxKeys ?? 64;
  if (entries.length > maxKeys) {
    c.error(at, `must have at most ${maxKeys} entries`);
    return undefined;
  }
  const out: Record<string, string> = {};
  let ok = true;
  for (const [k, val] of entries) {
    const s = string(c, val, [...at, { key: k }], { max: opts.maxLength ?? 1024 });
    if (s === undefined) ok = false;
    else setKey(out, k, s);
  }
  return ok ? out : undefined;
}

/** A plain number from 0 to 100 (Telemetry's randomSamplingPercentage, a Percent's value). */
export function percentage(c: Checker, v: unknown, at: Segment[]): number | undefined {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    c.error(at, 'must be a number from 0 to 100');
    return undefined;
  }
  if (v < 0 || v > 100) {
    c.error(at, `must be from 0 to 100 (got ${v})`);
    return undefined;
  }
  return v;
}

/** `{value: <double>}` (istio.networking.v1.Percent). */
export function percent(c: Checker, v: unknown, at: Segment[], rule: 'fault' | 'mirror'): number | undefined {
  const o = object(c, v, at, ['value']);
  if (!o) return undefined;
  const value = o.value ?? 0; // protobuf's zero value
  // Istio: validatePercentage (faults) — 0, or 0.0001..100; mirror percentages — 0..100.
  if (rule === 'fault' && typeof value === 'number' && Number.isFinite(value) && (value < 0 || value > 100 || (value > 0 && value < 0.0001))) {
    c.error([...at, 'value'], `percentage ${value} is neither 0 nor in range 0.0001..100`);
    return undefined;
  }
  return percentage(c, value, [...at, 'value']);
}

/** RFC 1123 label, as Istio's labels.IsDNS1123Label (upper case allowed there). */
const DNS1123_LABEL = /^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
export function isDns1123Label(s: string): boolean {
  return s.length <= 63 && DNS1123_LABEL.test(s);
}

/** Kubernetes object names: a lower-case RFC 1123 subdomain, at most 253 characters. */
const DNS1123_SUBDOMAIN = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;
export function isDns1123Subdomain(s: string): boolean {
  return s.length <= 253 && DNS1123_SUBDOMAIN.test(s);
}

/** Kubernetes label keys and values (Istio's labels.Instance.Validate). */
const QUALIFIED_NAME = /^(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
export function isLabelValue(s: string): boolean {
  return s === '' || (s.length <= 63 && QUALIFIED_NAME.test(s));
}

/** An HTTP header name (RFC 9110 token). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
export function isToken(s: string): boolean {
  return TOKEN.test(s);
}
