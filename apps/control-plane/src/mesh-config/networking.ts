/**
 * networking.istio.io VirtualService and DestinationRule specs → Concord's normalised form,
 * with Istio's validation rules (istio/istio pkg/config/validation: validation.go,
 * virtualservice.go, agent/validation.go, and the CRDs' schemas and CEL rules). Fields Istio
 * has and Concord does not implement are refused with the reason. Pure.
 */
import type { mesh } from '@concord/core';
import {
  type Checker,
  INT32_MAX,
  type Obj,
  type Segment,
  UINT32_MAX,
  boolean,
  duration,
  integer,
  isDns1123Label,
  isLabelValue,
  isObj,
  isToken,
  setKey,
  list,
  object,
  percent,
  required,
  string,
  stringList,
} from './fields.js';
import { serviceOfHost } from './hosts.js';
import { regexProblem } from './regex.js';

/** A reference from one resource to a service (and maybe a subset), checked across resources. */
export interface ServiceRef {
  service: string;
  at: Segment[];
  subset?: { name: string; at: Segment[] };
}

const MAX_HOSTS = 64;
const MAX_HTTP_ROUTES = 256;
const MAX_MATCHES = 64;
const MAX_DESTINATIONS = 64;
const MAX_HEADERS = 64;
const MAX_SUBSETS = 64;

const ONE_PORT = 'each Concord service listens on one port';

/** Labels Concord instances carry: `app` (the service name) and `version` (its version label). */
export const INSTANCE_LABELS = ['app', 'version'] as const;

/** Labels of a subset or a workload selector: keys Concord instances carry, values Kubernetes accepts. */
export function instanceLabels(c: Checker, v: unknown, at: Segment[], opts: { nonEmpty: boolean; service?: string }): Record<string, string> | undefined {
  if (v === undefined) {
    if (opts.nonEmpty) c.error(at, 'is required');
    return undefined;
  }
  if (!isObj(v)) {
    c.error(at, 'must be a mapping of label names to values');
    return undefined;
  }
  const out: Record<string, string> = {};
  let ok = true;
  for (const [k, val] of Object.entries(v)) {
    const kat = [...at, { key: k }];
    if (!(INSTANCE_LABELS as readonly string[]).includes(k)) {
      c.error(kat, `label "${k}" is not supported by Concord: instances carry only the labels ${INSTANCE_LABELS.join(' and ')}`);
      ok = false;
      continue;
    }
    const s = string(c, val, kat, { max: 63 });
    if (s === undefined) ok = false;
    else if (s.includes('*')) {
      c.error(kat, 'wildcard is not supported in label values');
      ok = false;
    } else if (!isLabelValue(s)) {
      c.error(kat, `invalid label value "${s}" (letters, digits, "-", "_", "." — starting and ending with a letter or digit)`);
      ok = false;
    } else if (k === 'app' && opts.service !== undefined && s !== opts.service) {
      c.error(kat, `app "${s}" is not the host's service "${opts.service}", so the subset would select no instance`);
      ok = false;
    } else setKey(out, k, s);
  }
  if (ok && opts.nonEmpty && Object.keys(out).length === 0) {
    c.error(at, 'must not be empty (a subset without labels selects every instance; leave the subset out instead)');
    return undefined;
  }
  return ok ? out : undefined;
}

// ---------------------------------------------------------------------------------------------
// VirtualService

const VS_UNSUPPORTED = {
  tcp: 'TCP routes (Concord routes HTTP only)',
  tls: 'TLS/SNI routes (Concord routes HTTP only)',
  exportTo: 'Concord has one namespace, so every resource is visible everywhere',
};

const HTTP_ROUTE_UNSUPPORTED = {
  redirect: 'HTTP redirects',
  directResponse: 'direct responses',
  delegate: 'delegate VirtualServices',
  rewrite: 'URI and authority rewrites',
  corsPolicy: 'CORS policies (the Concord gateway handles CORS)',
  mirrors: 'several mirrors per route; use mirror with mirrorPercentage',
  mirrorPercent: 'deprecated in Istio; use mirrorPercentage',
  mirror_percent: 'deprecated in Istio; use mirrorPercentage',
};

const MATCH_UNSUPPORTED = {
  scheme: 'scheme matching (Concord traffic is http)',
  authority: 'authority matching (route by VirtualService hosts)',
  port: ONE_PORT,
  sourceLabels: "matching on the caller's labels",
  gateways: 'gateway-specific matches',
  sourceNamespace: 'Concord has one namespace, "default"',
  withoutHeaders: 'negative header matches',
  statPrefix: 'per-match statistics prefixes',
};

export function virtualService(
  c: Checker,
  spec: Obj,
  at: Segment[],
): { value: Omit<mesh.VirtualService, 'name'>; hosts: ServiceRef[]; refs: ServiceRef[] } | null {
  const s = object(c, spec, at, ['hosts', 'http', 'gateways'], VS_UNSUPPORTED);
  if (!s) return null;
  const refs: ServiceRef[] = [];
  const hosts: ServiceRef[] = [];

  if (s.gateways !== undefined) {
    const gws = stringList(c, s.gateways, [...at, 'gateways']);
    // `mesh` is Istio's name for "the sidecars", the same as leaving gateways out.
    if (gws && !(gws.length === 1 && gws[0] === 'mesh')) {
      c.error(
        [...at, 'gateways'],
        'is not supported by Concord: routes bound to Istio gateways (only "mesh", the default, is); the Concord gateway has its own routes',
      );
    }
  }

  const hostList = list(c, required(c, s, 'hosts', at), [...at, 'hosts'], { max: MAX_HOSTS });
  if (hostList && hostList.length === 0) c.error([...at, 'hosts'], 'must name at least one service (delegate VirtualServices are not supported by Concord)');
  const seen = new Map<string, number>();
  hostList?.forEach((h, i) => {
    const hat = [...at, 'hosts', i];
    const host = string(c, h, hat, { max: 253, nonEmpty: true });
    if (host === undefined) return;
    const r = serviceOfHost(host);
    if (!r.ok) {
      c.error(hat, r.error);
      return;
    }
    const dup = seen.get(r.service);
    if (dup !== undefined) {
      c.error(hat, `duplicate host: hosts[${dup}] already names service "${r.service}"`);
      return;
    }
    seen.set(r.service, i);
    hosts.push({ service: r.service, at: hat });
  });

  const httpList = list(c, required(c, s, 'http', at), [...at, 'http'], { max: MAX_HTTP_ROUTES });
  if (httpList && httpList.length === 0) c.error([...at, 'http'], 'must have at least one route');
  const http: mesh.HttpRoute[] = [];
  httpList?.forEach((r, i) => {
    const route = httpRoute(c, r, [...at, 'http', i], refs);
    if (route) http.push(route);
  });
  return { value: { hosts: hosts.map((h) => h.service), http }, hosts, refs };
}

function httpRoute(c: Checker, v: unknown, at: Segment[], refs: ServiceRef[]): mesh.HttpRoute | null {
  if (v === null || v === undefined) {
    c.error(at, 'http route may not be null');
    return null;
  }
  const o = object(c, v, at, ['name', 'match', 'route', 'timeout', 'retries', 'fault', 'headers', 'mirror', 'mirrorPercentage'], HTTP_ROUTE_UNSUPPORTED);
  if (!o) return null;
  const out: mesh.HttpRoute = { match: [], route: [] };
  const name = string(c, o.name, [...at, 'name'], { max: 253 });
  if (name !== undefined) out.name = name;

  list(c, o.match, [...at, 'match'], { max: MAX_MATCHES })?.forEach((m, i) => {
    const match = matchRequest(c, m, [...at, 'match', i]);
    if (match) out.match.push(match);
  });

  // Istio: "HTTP route, redirect or direct_response is required"; Concord has only route.
  const dests = list(c, required(c, o, 'route', at), [...at, 'route'], { max: MAX_DESTINATIONS });
  if (dests && dests.length === 0) c.error([...at, 'route'], 'must have at least one destination');
  if (dests) {
    const parsed: mesh.HttpRouteDestination[] = [];
    dests.forEach((d, i) => {
      const r = routeDestination(c, d, [...at, 'route', i], refs);
      if (r) parsed.push(r);
    });
    if (parsed.length === dests.length) {
      if (parsed.length === 1) {
        // Istio: "If there is only one destination in a rule, it will receive all traffic" —
        // whatever its weight says.
        parsed[0]!.weight = 100;
      } else if (parsed.reduce((sum, p) => sum + p.weight, 0) === 0) {
        // Istio's validateHTTPRouteDestinations: "total destination weight = 0". Since Istio
        // 1.15 weights are relative and need not sum to 100 (istio/istio#36069, PR #39544).
        c.error([...at, 'route'], 'total destination weight = 0: give at least one destination a positive weight (weights are relative)');
      }
    }
    out.route = parsed;
  }

  if (o.timeout !== undefined) {
    const ms = duration(c, o.timeout, [...at, 'timeout']);
    if (ms !== undefined) out.timeoutMs = ms;
  }
  if (o.retries !== undefined) {
    const r = retries(c, o.retries, [...at, 'retries']);
    if (r) out.retries = r;
  }
  if (o.fault !== undefined) {
    const f = fault(c, o.fault, [...at, 'fault']);
    if (f) out.fault = f;
  }
  if (o.headers !== undefined) {
    const h = headers(c, o.headers, [...at, 'headers']);
    if (h) out.headers = h;
  }
  if (o.mirror !== undefined) {
    const m = destination(c, o.mirror, [...at, 'mirror'], refs);
    if (m) out.mirror = m;
    // Istio mirrors 100% when mirrorPercentage is unset (route.MirrorPercent).
    const p = o.mirrorPercentage === undefined ? 100 : percent(c, o.mirrorPercentage, [...at, 'mirrorPercentage'], 'mirror');
    if (p !== undefined) out.mirrorPercentage = p;
  } else if (o.mirrorPercentage !== undefined) {
    c.error([...at, 'mirrorPercentage'], 'needs mirror (without it nothing is mirrored)');
  }
  return out;
}

function stringMatch(c: Checker, v: unknown, at: Segment[], opts: { allowEmptyPrefix: boolean }): mesh.StringMatch | null {
  const o = object(c, v, at, ['exact', 'prefix', 'regex']);
  if (!o) {
    if (v === null || v === undefined) c.error(at, 'must set one of exact, prefix or regex');
    return null;
  }
  const keys = Object.keys(o);
  if (keys.length !== 1) {
    c.error(
      at,
      keys.length === 0
        ? 'must set one of exact, prefix or regex (Concord does not support presence matches)'
        : `must set only one of exact, prefix or regex (has ${keys.join(', ')})`,
    );
    return null;
  }
  const key = keys[0] as 'exact' | 'prefix' | 'regex';
  const value = string(c, o[key], [...at, key], { max: key === 'regex' ? 1024 : 4096 });
  if (value === undefined) return null;
  if (key === 'prefix' && value === '' && !opts.allowEmptyPrefix) {
    // Istio's validateStringMatch: only uri may have an empty prefix.
    c.error([...at, key], 'prefix string match should not be empty');
    return null;
  }
  if (key === 'regex') {
    const problem = regexProblem(value);
    if (problem) {
      c.error([...at, key], problem);
      return null;
    }
  }
  return { [key]: value };
}

function matchRequest(c: Checker, v: unknown, at: Segment[]): mesh.HttpMatchRequest | null {
  if (v === null || v === undefined) {
    c.error(at, 'match may not be null');
    return null;
  }
  const o = object(c, v, at, ['name', 'uri', 'method', 'headers', 'queryParams', 'ignoreUriCase'], MATCH_UNSUPPORTED);
  if (!o) return null;
  const out: mesh.HttpMatchRequest = {};
  const name = string(c, o.name, [...at, 'name'], { max: 253 });
  if (name !== undefined) out.name = name;
  if (o.uri !== undefined) {
    const m = stringMatch(c, o.uri, [...at, 'uri'], { allowEmptyPrefix: true });
    if (m) out.uri = m;
  }
  if (o.method !== undefined) {
    const m = stringMatch(c, o.method, [...at, 'method'], { allowEmptyPrefix: false });
    if (m) out.method = m;
  }
  if (o.headers !== undefined) {
    const h = keyedMatches(c, o.headers, [...at, 'headers'], 'header');
    if (h) out.headers = h;
  }
  if (o.queryParams !== undefined) {
    const q = keyedMatches(c, o.queryParams, [...at, 'queryParams'], 'query');
    if (q) out.queryParams = q;
  }
  const ignore = boolean(c, o.ignoreUriCase, [...at, 'ignoreUriCase']);
  if (ignore !== undefined) out.ignoreUriCase = ignore;
  return out;
}

function keyedMatches(c: Checker, v: unknown, at: Segment[], kind: 'header' | 'query'): Record<string, mesh.StringMatch> | undefined {
  if (!isObj(v)) {
    c.error(at, `must be a mapping of ${kind === 'header' ? 'header' : 'query parameter'} names to matches`);
    return undefined;
  }
  const entries = Object.entries(v);
  if (entries.length > MAX_HEADERS) {
    c.error(at, `must have at most ${MAX_HEADERS} entries`);
    return undefined;
  }
  const out: Record<string, mesh.StringMatch> = {};
  let ok = true;
  for (const [rawKey, m] of entries) {
    const kat = [...at, { key: rawKey }];
    let key = rawKey;
    if (kind === 'header') {
      if (rawKey.startsWith('@request.auth.claims')) {
        c.error(kat, 'is not supported by Concord: JWT claim routing (Istio allows it only on gateways)');
        ok = false;
        continue;
      }
      if (rawKey.startsWith(':')) {
        c.error(kat, 'is not supported by Concord: pseudo-header matches; use uri or method');
        ok = false;
        continue;
      }
      if (!isToken(rawKey)) {
        c.error(kat, `header name "${rawKey}" is not a valid header name`);
        ok = false;
        continue;
      }
      // Istio: "The header keys must be lowercase"; HTTP header names are case-insensitive.
      key = rawKey.toLowerCase();
    } else if (rawKey.length === 0) {
      c.error(kat, 'query parameter name must not be empty');
      ok = false;
      continue;
    }
    if (Object.hasOwn(out, key)) {
      c.error(kat, `duplicate ${kind === 'header' ? 'header' : 'query parameter'} "${key}" (names are case-insensitive)`);
      ok = false;
      continue;
    }
    const sm = stringMatch(c, m, kat, { allowEmptyPrefix: false });
    if (sm) setKey(out, key, sm);
    else ok = false;
  }
  return ok ? out : undefined;
}

function destination(c: Checker, v: unknown, at: Segment[], refs: ServiceRef[]): mesh.Destination | null {
  const o = object(c, v, at, ['host', 'subset'], { port: ONE_PORT });
  if (!o) {
    if (v === null || v === undefined) c.error(at, 'is required');
    return null;
  }
  const host = string(c, required(c, o, 'host', at), [...at, 'host'], { max: 253, nonEmpty: true });
  const subset = string(c, o.subset, [...at, 'subset'], { max: 63 });
  if (subset !== undefined && !isDns1123Label(subset)) c.error([...at, 'subset'], `subset name is invalid: "${subset}"`);
  if (host === undefined) return null;
  const r = serviceOfHost(host);
  if (!r.ok) {
    c.error([...at, 'host'], r.error);
    return null;
  }
  const out: mesh.Destination = { host: r.service };
  const ref: ServiceRef = { service: r.service, at: [...at, 'host'] };
  if (subset !== undefined && isDns1123Label(subset)) {
    out.subset = subset;
    ref.subset = { name: subset, at: [...at, 'subset'] };
  }
  refs.push(ref);
  return out;
}

function routeDestination(c: Checker, v: unknown, at: Segment[], refs: ServiceRef[]): mesh.HttpRouteDestination | null {
  if (v === null || v === undefined) {
    c.error(at, 'weight may not be nil');
    return null;
  }
  const o = object(c, v, at, ['destination', 'weight', 'headers']);
  if (!o) return null;
  const dest = destination(c, o.destination, [...at, 'destination'], refs);
  // Istio's validateWeight: "weight %d < 0"; the CRD says int32.
  const weight = integer(c, o.weight, [...at, 'weight'], 0, INT32_MAX, ' (a relative weight, 0 or more)');
  const h = o.headers === undefined ? undefined : headers(c, o.headers, [...at, 'headers']);
  if (!dest || (o.weight !== undefined && weight === undefined) || (o.headers !== undefined && !h)) return null;
  const d: mesh.HttpRouteDestination = { destination: dest, weight: weight ?? 0 };
  if (h) d.headers = h;
  return d;
}

const RETRY_ON = new Set(['5xx', 'gateway-error', 'reset', 'connect-failure', 'refused-stream', 'retriable-4xx', 'retriable-status-codes']);
/** Istio accepts these (agent/validation.go supportedRetryOnPolicies); Concord's data plane does not implement them. */
const RETRY_ON_ISTIO_ONLY = new Set([
  'reset-before-request',
  'retriable-headers',
  'envoy-ratelimited',
  'http3-post-connect-failure',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
]);
/** Status codes Go's net/http knows (Istio accepts a code when http.StatusText(code) != ""). */
const KNOWN_STATUS = new Set([
  100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408,
  409, 410, 411, 412, 413, 414, 415, 416, 417, 418, 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
]);
function retries(c: Checker, v: unknown, at: Segment[]): mesh.HttpRetry | null {
  const o = object(c, v, at, ['attempts', 'perTryTimeout', 'retryOn', 'retryRemoteLocalities'], {
    backoff: 'a custom retry backoff (Concord uses its own bounded exponential backoff with jitter)',
    retryIgnorePreviousHosts: 'Concord always tries another instance first when one is available',
  });
  if (!o) return null;
  // Istio: "attempts cannot be negative"; 0 disables retries.
  const attempts = integer(c, o.attempts ?? 0, [...at, 'attempts'], 0, 100);
  if (attempts === undefined) return null;
  if (attempts === 0 && (o.perTryTimeout !== undefined || o.retryOn !== undefined || o.retryRemoteLocalities !== undefined)) {
    // Istio's ValidateHTTPRetry says exactly this.
    c.error([...at, 'attempts'], 'http retry policy configured when attempts are set to 0 (disabled)');
    return null;
  }
  // retryOn left empty when omitted: the data plane then applies Istio's default conditions
  // (connect-failure, refused-stream, 503) — see core/mesh/retry.ts resolveRetryPolicy.
  const out: mesh.HttpRetry = { attempts, retryOn: [] };
  if (o.perTryTimeout !== undefined) {
    const ms = duration(c, o.perTryTimeout, [...at, 'perTryTimeout']);
    if (ms !== undefined) out.perTryTimeoutMs = ms;
  }
  if (o.retryOn !== undefined) {
    const raw = string(c, o.retryOn, [...at, 'retryOn'], { max: 1024, nonEmpty: true });
    if (raw !== undefined) {
      const conds: mesh.RetryOn[] = [];
      for (const part of raw.split(',')) {
        // Istio splits on "," and checks each part verbatim (no trimming).
        if (RETRY_ON.has(part)) conds.push(part as mesh.RetryOn);
        else if (/^\d{3}$/.test(part) && KNOWN_STATUS.has(Number(part))) conds.push(part as mesh.RetryOn);
        else if (RETRY_ON_ISTIO_ONLY.has(part))
          c.error([...at, 'retryOn'], `"${part}" is not supported by Concord (supported: ${[...RETRY_ON].join(', ')} and HTTP status codes)`);
        else
          c.error(
            [...at, 'retryOn'],
            `"${part}" is not a valid retryOn policy (use ${[...RETRY_ON].join(', ')} or an HTTP status code, comma-separated without spaces)`,
          );
      }
      out.retryOn = [...new Set(conds)];
    }
  }
  const remote = boolean(c, o.retryRemoteLocalities, [...at, 'retryRemoteLocalities']);
  if (remote !== undefined) out.retryRemoteLocalities = remote;
  return out;
}

function fault(c: Checker, v: unknown, at: Segment[]): mesh.HttpFaultInjection | null {
  const o = object(c, v, at, ['delay', 'abort']);
  if (!o) return null;
  if (o.delay === undefined && o.abort === undefined) {
    c.error(at, 'HTTP fault injection must have an abort and/or a delay');
    return null;
  }
  const out: mesh.HttpFaultInjection = {};
  if (o.delay !== undefined) {
    const dat = [...at, 'delay'];
    const d = object(c, o.delay, dat, ['fixedDelay', 'percentage'], {
      exponentialDelay: 'exponential delays (Istio does not implement them either)',
      percent: 'deprecated in Istio; use percentage: {value: …}',
    });
    if (d) {
      const ms = duration(c, required(c, d, 'fixedDelay', dat), [...dat, 'fixedDelay']);
      const pct = fixedPercentage(c, d, dat);
      if (ms !== undefined && pct !== undefined) out.delay = { fixedDelayMs: ms, percentage: pct };
    }
  }
  if (o.abort !== undefined) {
    const aat = [...at, 'abort'];
    const a = object(c, o.abort, aat, ['httpStatus', 'percentage'], {
      grpcStatus: 'gRPC aborts (Concord traffic is HTTP/JSON); use httpStatus',
      http2Error: 'HTTP/2 aborts (Istio does not implement them either)',
    });
    if (a) {
      // Istio's validateHTTPStatus: 200..599 (its message; its check lets 600 through).
      const status = integer(c, required(c, a, 'httpStatus', aat), [...aat, 'httpStatus'], 200, 599, ' (an HTTP status from 200 to 599)');
      const pct = fixedPercentage(c, a, aat);
      if (status !== undefined && pct !== undefined) out.abort = { httpStatus: status, percentage: pct };
    }
  }
  return out.delay || out.abort ? out : null;
}

/**
 * A fault's percentage. Istio injects into no request when it is unset (the delay's deprecated
 * `percent` defaults to 0; route.TranslateFault), so a fault without it would silently do
 * nothing: Concord asks for it.
 */
function fixedPercentage(c: Checker, o: Obj, at: Segment[]): number | undefined {
  if (o.percentage === undefined) {
    c.error([...at, 'percentage'], 'is required: without it Istio injects the fault into no request (write percentage: {value: 100} for all)');
    return undefined;
  }
  return percent(c, o.percentage, [...at, 'percentage'], 'fault');
}

function headerOps(c: Checker, v: unknown, at: Segment[]): mesh.HeaderOperations | null {
  const o = object(c, v, at, ['set', 'add', 'remove']);
  if (!o) return null;
  const out: mesh.HeaderOperations = {};
  let ok = true;
  const name = (raw: string, hat: Segment[]): string | null => {
    if (raw.startsWith(':') || raw.toLowerCase() === 'host') {
      // Istio refuses ":"-prefixed names and Host in most positions; Concord in all.
      c.error(hat, `invalid header "${raw}": Concord does not rewrite pseudo-headers or Host`);
      return null;
    }
    if (!isToken(raw)) {
      c.error(hat, `"${raw}" is not a valid header name`);
      return null;
    }
    return raw.toLowerCase();
  };
  for (const op of ['set', 'add'] as const) {
    if (o[op] === undefined) continue;
    const oat = [...at, op];
    if (!isObj(o[op])) {
      c.error(oat, 'must be a mapping of header names to values');
      ok = false;
      continue;
    }
    const entries = Object.entries(o[op] as Obj);
    if (entries.length > MAX_HEADERS) {
      c.error(oat, `must have at most ${MAX_HEADERS} entries`);
      ok = false;
      continue;
    }
    const map: Record<string, string> = {};
    for (const [k, val] of entries) {
      const hat = [...oat, { key: k }];
      const n = name(k, hat);
      const value = string(c, val, hat, { max: 8192 });
      if (n === null || value === undefined) {
        ok = false;
        continue;
      }
      const literal = headerValue(value);
      if (typeof literal !== 'string') {
        c.error(hat, literal.error);
        ok = false;
        continue;
      }
      if (Object.hasOwn(map, n)) {
        c.error(hat, `duplicate header "${n}" (names are case-insensitive)`);
        ok = false;
        continue;
      }
      setKey(map, n, literal);
    }
    out[op] = map;
  }
  if (o.remove !== undefined) {
    const names = stringList(c, o.remove, [...at, 'remove'], { max: MAX_HEADERS, maxLength: 256 });
    if (names) {
      const lowered: string[] = [];
      names.forEach((n, i) => {
        const l = name(n, [...at, 'remove', i]);
        if (l === null) ok = false;
        else if (!lowered.includes(l)) lowered.push(l);
      });
      out.remove = lowered;
    } else ok = false;
  }
  return ok ? out : null;
}

/**
 * A header value as Envoy reads it: `%VAR%` is one of Envoy's substitutions (Istio checks
 * their syntax), `%%` a literal percent sign. Concord sends values literally, so substitutions
 * are refused rather than sent as text.
 */
function headerValue(v: string): string | { error: string } {
  // Istio: httpHeaderValueRegexp — no control characters other than tab.
  for (let i = 0; i < v.length; i++) {
    const code = v.charCodeAt(i);
    if ((code < 0x20 && code !== 0x09) || code === 0x7f) return { error: 'header value must not contain control characters' };
  }
  let out = '';
  for (let i = 0; i < v.length; i++) {
    if (v[i] !== '%') {
      out += v[i];
      continue;
    }
    if (v[i + 1] === '%') {
      out += '%';
      i++;
      continue;
    }
    return { error: `Envoy's %VARIABLE% substitutions are not supported by Concord; write %% for a literal "%"` };
  }
  return out;
}

function headers(c: Checker, v: unknown, at: Segment[]): mesh.Headers | null {
  const o = object(c, v, at, ['request', 'response']);
  if (!o) return null;
  const out: mesh.Headers = {};
  let ok = true;
  for (const side of ['request', 'response'] as const) {
    if (o[side] === undefined) continue;
    const ops = headerOps(c, o[side], [...at, side]);
    if (ops) out[side] = ops;
    else ok = false;
  }
  return ok ? out : null;
}

// ---------------------------------------------------------------------------------------------
// DestinationRule

const TRAFFIC_POLICY_UNSUPPORTED = {
  portLevelSettings: ONE_PORT,
  tunnel: 'tunnelling',
  proxyProtocol: 'the PROXY protocol',
  retryBudget: 'retry budgets (use connectionPool.http.maxRetries)',
};

export function destinationRule(
  c: Checker,
  spec: Obj,
  at: Segment[],
): { value: Omit<mesh.DestinationRule, 'name'>; host: ServiceRef | null; subsetNames: string[] } | null {
  const s = object(c, spec, at, ['host', 'trafficPolicy', 'subsets'], {
    exportTo: 'Concord has one namespace, so every resource is visible everywhere',
    workloadSelector: 'DestinationRules scoped to some callers',
  });
  if (!s) return null;
  let host: ServiceRef | null = null;
  const rawHost = string(c, required(c, s, 'host', at), [...at, 'host'], { max: 253, nonEmpty: true });
  if (rawHost !== undefined) {
    const r = serviceOfHost(rawHost);
    if (r.ok) host = { service: r.service, at: [...at, 'host'] };
    else c.error([...at, 'host'], r.error);
  }
  const out: Omit<mesh.DestinationRule, 'name'> = { host: host?.service ?? '', subsets: [] };
  if (s.trafficPolicy !== undefined) {
    const tp = trafficPolicy(c, s.trafficPolicy, [...at, 'trafficPolicy']);
    if (tp) out.trafficPolicy = tp;
  }
  const names = new Map<string, number>();
  list(c, s.subsets, [...at, 'subsets'], { max: MAX_SUBSETS })?.forEach((raw, i) => {
    const sat = [...at, 'subsets', i];
    if (raw === null || raw === undefined) {
      c.error(sat, 'subset may not be null');
      return;
    }
    const o = object(c, raw, sat, ['name', 'labels', 'trafficPolicy']);
    if (!o) return;
    const name = string(c, required(c, o, 'name', sat), [...sat, 'name'], { max: 63 });
    if (name !== undefined && !isDns1123Label(name)) c.error([...sat, 'name'], `subset name is invalid: "${name}"`);
    else if (name !== undefined && names.has(name)) c.error([...sat, 'name'], `duplicate subset names: "${name}" (also subsets[${names.get(name)}])`);
    const labels = instanceLabels(c, o.labels, [...sat, 'labels'], { nonEmpty: true, service: host?.service });
    const tp = o.trafficPolicy === undefined ? undefined : trafficPolicy(c, o.trafficPolicy, [...sat, 'trafficPolicy']);
    if (name === undefined || !isDns1123Label(name) || names.has(name)) return;
    names.set(name, i);
    if (!labels || tp === null) return;
    const subset: mesh.Subset = { name, labels };
    if (tp) subset.trafficPolicy = tp;
    out.subsets.push(subset);
  });
  return { value: out, host, subsetNames: [...names.keys()] };
}

function trafficPolicy(c: Checker, v: unknown, at: Segment[]): mesh.TrafficPolicy | null {
  const o = object(c, v, at, ['loadBalancer', 'connectionPool', 'outlierDetection', 'tls'], TRAFFIC_POLICY_UNSUPPORTED);
  if (!o) return null;
  if (Object.keys(o).length === 0 && isObj(v) && Object.keys(v).length === 0) {
    c.error(at, 'traffic policy must have at least one field');
    return null;
  }
  const out: mesh.TrafficPolicy = {};
  let ok = true;
  if (o.loadBalancer !== undefined) {
    const lb = loadBalancer(c, o.loadBalancer, [...at, 'loadBalancer']);
    if (lb) out.loadBalancer = lb;
    else ok = false;
  }
  if (o.connectionPool !== undefined) {
    const cp = connectionPool(c, o.connectionPool, [...at, 'connectionPool']);
    if (cp) out.connectionPool = cp;
    else ok = false;
  }
  if (o.outlierDetection !== undefined) {
    const od = outlierDetection(c, o.outlierDetection, [...at, 'outlierDetection']);
    if (od) out.outlierDetection = od;
    else ok = false;
  }
  if (o.tls !== undefined) {
    const tls = clientTls(c, o.tls, [...at, 'tls']);
    if (tls) out.tls = tls;
    else ok = false;
  }
  return ok ? out : null;
}

const LB_SIMPLE: readonly mesh.LbSimple[] = ['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST'];
/** Envoy's ring hash caps the ring at 8M entries. */
const MAX_RING_SIZE = 8_388_608;

function loadBalancer(c: Checker, v: unknown, at: Segment[]): mesh.LoadBalancerSettings | null {
  const o = object(c, v, at, ['simple', 'consistentHash'], {
    localityLbSetting: 'locality-aware balancing (Concord runs in one locality)',
    zoneAwareLbSetting: 'zone-aware balancing (Concord runs in one locality)',
    warmup: 'slow-start warm-up',
    warmupDurationSecs: 'slow-start warm-up',
    backendUtilization: 'utilisation-weighted balancing',
  });
  if (!o) return null;
  // LoadBalancerSettings.lb_policy is a protobuf oneof.
  if (o.simple !== undefined && o.consistentHash !== undefined) {
    c.error(at, 'must set only one of simple or consistentHash');
    return null;
  }
  if (o.simple === undefined && o.consistentHash === undefined) {
    c.error(at, 'must set simple or consistentHash');
    return null;
  }
  if (o.simple !== undefined) {
    const simple = string(c, o.simple, [...at, 'simple']);
    if (simple === undefined) return null;
    if (!(LB_SIMPLE as readonly string[]).includes(simple)) {
      c.error([...at, 'simple'], `must be one of ${LB_SIMPLE.join(', ')}`);
      return null;
    }
    return { simple: simple as mesh.LbSimple };
  }
  const hat = [...at, 'consistentHash'];
  const h = object(c, o.consistentHash, hat, ['httpHeaderName', 'useSourceIp', 'httpQueryParameterName', 'minimumRingSize', 'ringHash'], {
    httpCookie: 'cookie-based affinity',
    maglev: 'Maglev hashing (use the default ring hash)',
  });
  if (!h) return null;
  const keys = ['httpHeaderName', 'useSourceIp', 'httpQueryParameterName'].filter((k) => h[k] !== undefined && h[k] !== false);
  // ConsistentHashLB.hash_key is a protobuf oneof.
  if (keys.length !== 1) {
    c.error(
      hat,
      keys.length === 0
        ? 'must set one of httpHeaderName, useSourceIp or httpQueryParameterName'
        : `must set only one of httpHeaderName, useSourceIp or httpQueryParameterName (has ${keys.join(', ')})`,
    );
    return null;
  }
  const out: NonNullable<mesh.LoadBalancerSettings['consistentHash']> = {};
  if (h.httpHeaderName !== undefined) {
    const name = string(c, h.httpHeaderName, [...hat, 'httpHeaderName'], { max: 256, nonEmpty: true });
    if (name === undefined) return null;
    if (!isToken(name)) {
      c.error([...hat, 'httpHeaderName'], `"${name}" is not a valid header name`);
      return null;
    }
    out.httpHeaderName = name.toLowerCase();
  }
  if (h.useSourceIp !== undefined) {
    const b = boolean(c, h.useSourceIp, [...hat, 'useSourceIp']);
    if (b === undefined) return null;
    if (b) out.useSourceIp = true;
  }
  if (h.httpQueryParameterName !== undefined) {
    const q = string(c, h.httpQueryParameterName, [...hat, 'httpQueryParameterName'], { max: 256, nonEmpty: true });
    if (q === undefined) return null;
    out.httpQueryParameterName = q;
  }
  // minimumRingSize is deprecated in Istio for ringHash.minimumRingSize; both mean the same,
  // and Istio refuses both at once.
  if (h.minimumRingSize !== undefined && h.ringHash !== undefined) {
    c.error(hat, 'only one of minimumRingSize or ringHash can be specified');
    return null;
  }
  let ring: unknown = h.minimumRingSize;
  let ringAt: Segment[] = [...hat, 'minimumRingSize'];
  if (h.ringHash !== undefined) {
    const r = object(c, h.ringHash, [...hat, 'ringHash'], ['minimumRingSize']);
    if (!r) return null;
    ring = r.minimumRingSize;
    ringAt = [...hat, 'ringHash', 'minimumRingSize'];
  }
  if (ring !== undefined) {
    const size = integer(c, ring, ringAt, 0, MAX_RING_SIZE);
    if (size === undefined) return null;
    if (size > 0) out.minimumRingSize = size;
  }
  return { consistentHash: out };
}

/** Istio's protobuf zero value means "unset, use the default": such fields are left out. */
function positiveOrUnset(c: Checker, v: unknown, at: Segment[], max: number): number | null | undefined {
  if (v === undefined) return undefined;
  const n = integer(c, v, at, 0, max);
  if (n === undefined) return null;
  return n === 0 ? undefined : n;
}

function connectionPool(c: Checker, v: unknown, at: Segment[]): mesh.ConnectionPoolSettings | null {
  const o = object(c, v, at, ['tcp', 'http']);
  if (!o) return null;
  if (o.tcp === undefined && o.http === undefined) {
    c.error(at, 'connection pool must have at least one field');
    return null;
  }
  const out: mesh.ConnectionPoolSettings = {};
  let ok = true;
  const set = (key: keyof mesh.ConnectionPoolSettings, value: number | null | undefined) => {
    if (value === null) ok = false;
    else if (value !== undefined) out[key] = value;
  };
  if (o.tcp !== undefined) {
    const tat = [...at, 'tcp'];
    const t = object(c, o.tcp, tat, ['maxConnections', 'connectTimeout'], {
      tcpKeepalive: 'TCP keep-alive settings',
      maxConnectionDuration: 'a maximum connection duration',
      idleTimeout: 'a TCP idle timeout (use http.idleTimeout)',
    });
    if (!t) ok = false;
    else {
      set('maxConnections', positiveOrUnset(c, t.maxConnections, [...tat, 'maxConnections'], INT32_MAX));
      if (t.connectTimeout !== undefined) {
        const ms = duration(c, t.connectTimeout, [...tat, 'connectTimeout']);
        set('connectTimeoutMs', ms === undefined ? null : ms);
      }
    }
  }
  if (o.http !== undefined) {
    const hat = [...at, 'http'];
    const h = object(c, o.http, hat, ['http1MaxPendingRequests', 'http2MaxRequests', 'maxRequestsPerConnection', 'maxRetries', 'idleTimeout'], {
      h2UpgradePolicy: 'HTTP/2 upgrades (Concord speaks HTTP/1.1 between services)',
      useClientProtocol: 'HTTP/2 upgrades (Concord speaks HTTP/1.1 between services)',
      maxConcurrentStreams: 'HTTP/2 settings (Concord speaks HTTP/1.1 between services)',
      http2KeepAlive: 'HTTP/2 settings (Concord speaks HTTP/1.1 between services)',
    });
    if (!h) ok = false;
    else {
      // Istio's validateConnectionPool: each "must be non-negative".
      for (const k of ['http1MaxPendingRequests', 'http2MaxRequests', 'maxRequestsPerConnection', 'maxRetries'] as const) {
        set(k, positiveOrUnset(c, h[k], [...hat, k], INT32_MAX));
      }
      if (h.idleTimeout !== undefined) {
        const ms = duration(c, h.idleTimeout, [...hat, 'idleTimeout']);
        set('idleTimeoutMs', ms === undefined ? null : ms);
      }
    }
  }
  return ok ? out : null;
}

function outlierDetection(c: Checker, v: unknown, at: Segment[]): mesh.OutlierDetection | null {
  const o = object(c, v, at, ['consecutive5xxErrors', 'consecutiveGatewayErrors', 'interval', 'baseEjectionTime', 'maxEjectionPercent', 'minHealthPercent'], {
    consecutiveErrors: 'deprecated in Istio; use consecutive5xxErrors',
    consecutiveLocalOriginFailures: 'separate local-origin failure counting',
    splitExternalLocalOriginErrors: 'separate local-origin failure counting',
    outlierDetectionHttpErrorCodes: 'custom error codes for outlier detection',
  });
  if (!o) return null;
  let bad = 0;
  const num = (key: string, min: number, max: number): number | undefined => {
    if (o[key] === undefined) return undefined;
    const n = integer(c, o[key], [...at, key], min, max);
    if (n === undefined) bad++;
    return n;
  };
  const dur = (key: string): number | undefined => {
    if (o[key] === undefined) return undefined;
    const n = duration(c, o[key], [...at, key]);
    if (n === undefined) bad++;
    return n;
  };
  const c5xx = num('consecutive5xxErrors', 0, UINT32_MAX);
  const cgw = num('consecutiveGatewayErrors', 0, UINT32_MAX);
  const interval = dur('interval');
  const base = dur('baseEjectionTime');
  // Istio's ValidatePercent: 0..100.
  const maxEject = num('maxEjectionPercent', 0, 100);
  const minHealth = num('minHealthPercent', 0, 100);
  if (bad > 0) return null;
  // Defaults from Istio's DestinationRule reference (Envoy's): 5 consecutive 5xx, a 10s
  // interval, 30s base ejection, at most 10% ejected.
  const out: mesh.OutlierDetection = {
    consecutive5xxErrors: c5xx ?? 5,
    intervalMs: interval ?? 10_000,
    baseEjectionTimeMs: base ?? 30_000,
    maxEjectionPercent: maxEject ?? 10,
  };
  if (cgw !== undefined && cgw > 0) out.consecutiveGatewayErrors = cgw;
  if (minHealth !== undefined) out.minHealthPercent = minHealth;
  return out;
}

const TLS_MODES: readonly mesh.TlsMode[] = ['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'];
const TLS_FILES = 'Concord issues certificates from its own CA; use mode ISTIO_MUTUAL';

function clientTls(c: Checker, v: unknown, at: Segment[]): { mode: mesh.TlsMode } | null {
  const o = object(c, v, at, ['mode'], {
    clientCertificate: TLS_FILES,
    privateKey: TLS_FILES,
    caCertificates: TLS_FILES,
    caCrl: TLS_FILES,
    credentialName: TLS_FILES,
    subjectAltNames: TLS_FILES,
    sni: TLS_FILES,
    insecureSkipVerify: TLS_FILES,
  });
  if (!o) return null;
  const mode = o.mode === undefined ? 'DISABLE' : string(c, o.mode, [...at, 'mode']);
  if (mode === undefined) return null;
  if (!(TLS_MODES as readonly string[]).includes(mode)) {
    c.error([...at, 'mode'], `must be one of ${TLS_MODES.join(', ')}`);
    return null;
  }
  if (mode === 'MUTUAL') {
    // Istio's ValidateTLS: "client certificate required for mutual tls", "private key required".
    c.error(
      [...at, 'mode'],
      "MUTUAL needs clientCertificate and privateKey, which Concord does not support; use ISTIO_MUTUAL (certificates from Concord's CA)",
    );
    return null;
  }
  return { mode: mode as mesh.TlsMode };
}
