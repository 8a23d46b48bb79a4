/**
 * Parses a Consul `PUT /v1/agent/service/register` body into a ServiceSpec. Keys are matched
 * case-insensitively (as Consul's decoder does); unknown or unsupported fields are refused with
 * the path of the field, never silently dropped.
 */
import { parseDuration } from '@concord/core';
import type { FieldError } from '@concord/platform';
import type { CheckSpec, ServiceSpec } from './catalog.js';

const MAX_TAGS = 64;
const MAX_META_KEYS = 64;
const MAX_CHECKS = 16;
const MIN_INTERVAL_MS = 100;
const DEFAULT_TIMEOUT_MS = 10_000;

const SERVICE_KEYS = ['Name', 'ID', 'Address', 'Port', 'Tags', 'Meta', 'Check', 'Checks', 'EnableTagOverride', 'Weights'] as const;
const CHECK_KEYS = [
  'CheckID', 'ID', 'Name', 'Notes', 'Status', 'HTTP', 'Method', 'Header', 'Interval', 'Timeout', 'TTL',
  'DeregisterCriticalServiceAfter', 'TLSSkipVerify', 'ServiceID', 'FailuresBeforeCritical', 'SuccessBeforePassing', 'FailuresBeforeWarning',
] as const;
const UNSUPPORTED = new Set(['connect', 'proxy', 'kind', 'taggedaddresses', 'socketpath', 'namespace', 'partition', 'locality']);

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Canonicalises keys; reports unknown ones. */
function canon(obj: Obj, known: readonly string[], path: string, errors: FieldError[]): Obj {
  const byLower = new Map(known.map((k) => [k.toLowerCase(), k]));
  const out: Obj = {};
  for (const [k, v] of Object.entries(obj)) {
    const key = byLower.get(k.toLowerCase());
    if (key) out[key] = v;
    else if (UNSUPPORTED.has(k.toLowerCase())) errors.push({ path: `${path}/${k}`, message: 'is not supported by the Concord registry' });
    else errors.push({ path: `${path}/${k}`, message: 'is not a known field' });
  }
  return out;
}

function str(v: unknown, path: string, errors: FieldError[], opts: { required?: boolean; max?: number; pattern?: RegExp } = {}): string | undefined {
  if (v === undefined || v === null) {
    if (opts.required) errors.push({ path, message: 'is required' });
    return undefined;
  }
  if (typeof v !== 'string') {
    errors.push({ path, message: 'must be a string' });
    return undefined;
  }
  if (opts.required && v.length === 0) errors.push({ path, message: 'must not be empty' });
  else if (v.length > (opts.max ?? 256)) errors.push({ path, message: `must be at most ${opts.max ?? 256} characters` });
  else if (opts.pattern && v.length > 0 && !opts.pattern.test(v)) errors.push({ path, message: `must match ${opts.pattern}` });
  return v;
}

function duration(v: unknown, path: string, errors: FieldError[], minMs = 0): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const r = parseDuration(v);
  if (!r.ok) {
    errors.push({ path, message: r.error });
    return undefined;
  }
  if (r.ms < minMs) {
    errors.push({ path, message: `must be at least ${minMs}ms` });
    return undefined;
  }
  return r.ms;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function parseCheck(raw: unknown, path: string, serviceId: string, serviceName: string, ordinal: number | null, errors: FieldError[]): CheckSpec | null {
  if (!isObj(raw)) {
    errors.push({ path, message: 'must be an object' });
    return null;
  }
  const c = canon(raw, CHECK_KEYS, path, errors);
  const http = str(c.HTTP, `${path}/HTTP`, errors, { max: 2048 });
  const ttlMs = duration(c.TTL, `${path}/TTL`, errors, 1);
  const intervalMs = duration(c.Interval, `${path}/Interval`, errors, MIN_INTERVAL_MS);
  const timeoutMs = duration(c.Timeout, `${path}/Timeout`, errors, 1);
  const deregisterAfterMs = duration(c.DeregisterCriticalServiceAfter, `${path}/DeregisterCriticalServiceAfter`, errors, 0);
  const name = str(c.Name, `${path}/Name`, errors);
  const explicitId = str(c.CheckID, `${path}/CheckID`, errors) ?? str(c.ID, `${path}/ID`, errors);
  const method = str(c.Method, `${path}/Method`, errors, { pattern: /^(GET|HEAD|POST|PUT|OPTIONS)$/ });
  str(c.Notes, `${path}/Notes`, errors, { max: 1024 });
  const status = str(c.Status, `${path}/Status`, errors, { pattern: /^(passing|warning|critical)$/ });
  if (c.Header !== undefined) {
    if (!isObj(c.Header) || !Object.values(c.Header).every((v) => Array.isArray(v) && v.every((s) => typeof s === 'string'))) {
      errors.push({ path: `${path}/Header`, message: 'must map header names to arrays of strings' });
    }
  }
  for (const k of ['FailuresBeforeCritical', 'SuccessBeforePassing', 'FailuresBeforeWarning'] as const) {
    const v = c[k];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 100)) errors.push({ path: `${path}/${k}`, message: 'must be an integer from 0 to 100' });
  }
  if ((c.SuccessBeforePassing ?? 0) !== 0 || (c.FailuresBeforeWarning ?? 0) !== 0) {
    errors.push({ path: `${path}/${c.SuccessBeforePassing ? 'SuccessBeforePassing' : 'FailuresBeforeWarning'}`, message: 'is not supported by the Concord registry (only FailuresBeforeCritical is)' });
  }
  if (c.TLSSkipVerify !== undefined && typeof c.TLSSkipVerify !== 'boolean') errors.push({ path: `${path}/TLSSkipVerify`, message: 'must be a boolean' });
  if (http !== undefined) {
    try {
      const u = new URL(http);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') errors.push({ path: `${path}/HTTP`, message: 'must be an http or https URL' });
    } catch {
      errors.push({ path: `${path}/HTTP`, message: 'must be an absolute URL' });
    }
    if (intervalMs === undefined && c.Interval === undefined) errors.push({ path: `${path}/Interval`, message: 'is required for an HTTP check' });
    if (ttlMs !== undefined) errors.push({ path: `${path}/TTL`, message: 'cannot be combined with HTTP' });
  } else if (ttlMs === undefined && c.TTL === undefined) {
    errors.push({ path, message: 'needs either HTTP with Interval, or TTL' });
  }
  const checkId = explicitId || (ordinal === null ? `service:${serviceId}` : `service:${serviceId}:${ordinal}`);
  const definition: Record<string, string> = {};
  for (const k of ['HTTP', 'Interval', 'Timeout', 'TTL', 'DeregisterCriticalServiceAfter', 'Method'] as const) {
    if (typeof c[k] === 'string') definition[k] = c[k] as string;
  }
  const spec: CheckSpec = {
    checkId,
    name: name || `Service '${serviceName}' check`,
    type: http !== undefined ? 'http' : 'ttl',
    definition,
  };
  if (http !== undefined) spec.http = http;
  if (intervalMs !== undefined) {
    spec.intervalMs = intervalMs;
    spec.timeoutMs = timeoutMs ?? Math.min(DEFAULT_TIMEOUT_MS, intervalMs);
  }
  if (ttlMs !== undefined) spec.ttlMs = ttlMs;
  if (deregisterAfterMs !== undefined) spec.deregisterAfterMs = deregisterAfterMs;
  if (typeof c.FailuresBeforeCritical === 'number' && c.FailuresBeforeCritical > 0) spec.failuresBeforeCritical = c.FailuresBeforeCritical;
  // Remember the requested initial status in the definition; the catalog applies it for new checks.
  if (status) definition.Status = status;
  if (method) definition.Method = method;
  if (c.Header !== undefined) definition.Header = JSON.stringify(c.Header);
  return spec;
}

export function parseRegistration(body: unknown, defaultAddress: string): { ok: true; spec: ServiceSpec } | { ok: false; errors: FieldError[] } {
  const errors: FieldError[] = [];
  if (!isObj(body)) return { ok: false, errors: [{ path: '/body', message: 'must be a JSON object' }] };
  const b = canon(body, SERVICE_KEYS, '/body', errors);
  const name = str(b.Name, '/body/Name', errors, { required: true, pattern: NAME });
  const id = str(b.ID, '/body/ID', errors, { pattern: NAME }) || name || '';
  const address = str(b.Address, '/body/Address', errors, { max: 255 }) || defaultAddress;
  let port = 0;
  if (b.Port !== undefined) {
    if (typeof b.Port !== 'number' || !Number.isInteger(b.Port)) errors.push({ path: '/body/Port', message: 'must be an integer' });
    else if (b.Port < 0 || b.Port > 65535) errors.push({ path: '/body/Port', message: 'must be between 0 and 65535' });
    else port = b.Port;
  }
  const tags: string[] = [];
  if (b.Tags !== undefined && b.Tags !== null) {
    if (!Array.isArray(b.Tags)) errors.push({ path: '/body/Tags', message: 'must be an array of strings' });
    else if (b.Tags.length > MAX_TAGS) errors.push({ path: '/body/Tags', message: `must have at most ${MAX_TAGS} tags` });
    else b.Tags.forEach((t, i) => {
      const s = str(t, `/body/Tags/${i}`, errors, { max: 256 });
      if (s !== undefined) tags.push(s);
    });
  }
  const meta: Record<string, string> = {};
  if (b.Meta !== undefined && b.Meta !== null) {
    if (!isObj(b.Meta)) errors.push({ path: '/body/Meta', message: 'must be an object of strings' });
    else if (Object.keys(b.Meta).length > MAX_META_KEYS) errors.push({ path: '/body/Meta', message: `must have at most ${MAX_META_KEYS} keys` });
    else for (const [k, v] of Object.entries(b.Meta)) {
      if (!/^[A-Za-z0-9_-]{1,128}$/.test(k)) errors.push({ path: `/body/Meta/${k}`, message: 'keys are letters, digits, "_" or "-", at most 128' });
      const s = str(v, `/body/Meta/${k}`, errors, { max: 512 });
      if (s !== undefined) meta[k] = s;
    }
  }
  const weights = { Passing: 1, Warning: 1 };
  if (b.Weights !== undefined && b.Weights !== null) {
    const w = isObj(b.Weights) ? b.Weights : null;
    if (!w) errors.push({ path: '/body/Weights', message: 'must be an object {Passing, Warning}' });
    else for (const k of ['Passing', 'Warning'] as const) {
      const v = w[k];
      if (v === undefined) continue;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535) errors.push({ path: `/body/Weights/${k}`, message: 'must be an integer from 0 to 65535' });
      else weights[k] = v;
    }
  }
  if (b.EnableTagOverride !== undefined && typeof b.EnableTagOverride !== 'boolean') errors.push({ path: '/body/EnableTagOverride', message: 'must be a boolean' });
  const checks: CheckSpec[] = [];
  const rawChecks: Array<[unknown, string]> = [];
  if (b.Check !== undefined && b.Check !== null) rawChecks.push([b.Check, '/body/Check']);
  if (b.Checks !== undefined && b.Checks !== null) {
    if (!Array.isArray(b.Checks)) errors.push({ path: '/body/Checks', message: 'must be an array' });
    else for (const [i, c] of b.Checks.entries()) rawChecks.push([c, `/body/Checks/${i}`]);
  }
  if (rawChecks.length > MAX_CHECKS) errors.push({ path: '/body/Checks', message: `must have at most ${MAX_CHECKS} checks` });
  else {
    rawChecks.forEach(([raw, path], i) => {
      const c = parseCheck(raw, path, id, name ?? '', rawChecks.length === 1 ? null : i + 1, errors);
      if (c) checks.push(c);
    });
  }
  const seen = new Set<string>();
  for (const c of checks) {
    if (seen.has(c.checkId)) errors.push({ path: '/body/Checks', message: `duplicate CheckID ${c.checkId}` });
    seen.add(c.checkId);
  }
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, spec: { id, name: name as string, address, port, tags, meta, weights, checks } };
}
