/**
 * security.istio.io PeerAuthentication and AuthorizationPolicy specs → Concord's normalised
 * form, with Istio's validation rules (istio/istio pkg/config/validation/validation.go:
 * ValidatePeerAuthentication, ValidateAuthorizationPolicy, validateWorkloadSelector). Pure.
 */
import { mesh } from '@concord/core';
import { type Checker, type Obj, type Segment, isObj, list, object, string, stringList } from './fields.js';
import { instanceLabels } from './networking.js';

/** A reference to a service from a selector's `app` label or a principal, checked against the registry. */
export interface AppRef {
  service: string;
  at: Segment[];
}

/** PeerAuthentication before inheritance: UNSET is resolved across resources (see validate.ts). */
export interface PeerAuthDraft {
  selector?: Record<string, string>;
  mode: mesh.MtlsMode | 'UNSET';
}

const MTLS_MODES = ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'] as const;
const MAX_RULES = 64;
const MAX_VALUES = 256;

/** A workload selector (`matchLabels` on app/version); an empty one selects every workload, as none does. */
export function selector(c: Checker, v: unknown, at: Segment[], apps: AppRef[]): Record<string, string> | undefined | null {
  const o = object(c, v, at, ['matchLabels']);
  if (!o) return v === undefined ? undefined : null;
  if (o.matchLabels === undefined) return undefined;
  const labels = instanceLabels(c, o.matchLabels, [...at, 'matchLabels'], { nonEmpty: false });
  if (!labels) return null;
  if (labels.app !== undefined) apps.push({ service: labels.app, at: [...at, 'matchLabels', { key: 'app' }] });
  // Istio: an empty selector selects every workload, as no selector does.
  return Object.keys(labels).length === 0 ? undefined : labels;
}

export function peerAuthentication(c: Checker, spec: Obj, at: Segment[]): { value: PeerAuthDraft; apps: AppRef[] } | null {
  const s = object(c, spec, at, ['selector', 'mtls'], { portLevelMtls: 'per-port mTLS (each Concord service listens on one port)' });
  if (!s) return null;
  const apps: AppRef[] = [];
  const sel = selector(c, s.selector, [...at, 'selector'], apps);
  let mode: PeerAuthDraft['mode'] = 'UNSET';
  const m = object(c, s.mtls, [...at, 'mtls'], ['mode']);
  if (m && m.mode !== undefined) {
    const raw = string(c, m.mode, [...at, 'mtls', 'mode']);
    if (raw !== undefined && !(MTLS_MODES as readonly string[]).includes(raw)) c.error([...at, 'mtls', 'mode'], `must be one of ${MTLS_MODES.join(', ')}`);
    else if (raw !== undefined) mode = raw as PeerAuthDraft['mode'];
  }
  const value: PeerAuthDraft = { mode };
  if (sel) value.selector = sel;
  return { value, apps };
}

const SOURCE_UNSUPPORTED = {
  requestPrincipals: 'JWT request principals (the Concord gateway checks JWTs)',
  notRequestPrincipals: 'JWT request principals (the Concord gateway checks JWTs)',
  namespaces: 'Concord has one namespace, "default"; use principals',
  notNamespaces: 'Concord has one namespace, "default"; use principals',
  serviceAccounts: 'use principals (cluster.local/ns/default/sa/<service>)',
  notServiceAccounts: 'use notPrincipals (cluster.local/ns/default/sa/<service>)',
  trustDomains: 'Concord has one trust domain',
  notTrustDomains: 'Concord has one trust domain',
  ipBlocks: 'IP-based rules (all Concord processes share one host)',
  notIpBlocks: 'IP-based rules (all Concord processes share one host)',
  remoteIpBlocks: 'IP-based rules (all Concord processes share one host)',
  notRemoteIpBlocks: 'IP-based rules (all Concord processes share one host)',
};

const OPERATION_UNSUPPORTED = {
  hosts: 'host matches (a policy applies to the workloads its selector picks)',
  notHosts: 'host matches (a policy applies to the workloads its selector picks)',
  ports: 'port matches (each Concord service listens on one port)',
  notPorts: 'port matches (each Concord service listens on one port)',
};

/** Wildcards are allowed only as a prefix or suffix (or alone), as in Istio's string matching. */
function wildcardOk(s: string): boolean {
  const inner = s.slice(1, -1);
  return s === '*' || !inner.includes('*');
}

/**
 * Istio principals are `<trust domain>/ns/<namespace>/sa/<service account>`. Concord's trust
 * domain is concord.local; Istio's default, cluster.local, is accepted as an alias (as Istio's
 * trustDomainAliases do) so the same policy works on both.
 */
function principal(c: Checker, p: string, at: Segment[], apps: AppRef[]): string | null {
  if (!wildcardOk(p)) {
    c.error(at, `"${p}": "*" is allowed only at the start or the end`);
    return null;
  }
  const normalised = p.replace(/^cluster\.local\//, 'concord.local/');
  if (p.startsWith('*') || p.endsWith('*')) return normalised;
  const m = /^concord\.local\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(normalised);
  if (!m) {
    c.error(at, `"${p}" is not a Concord principal; write cluster.local/ns/default/sa/<service> (or concord.local/…)`);
    return null;
  }
  if (m[1] !== 'default') {
    c.error(at, `"${p}" names namespace "${m[1]}"; Concord has one namespace, "default"`);
    return null;
  }
  apps.push({ service: m[2]!, at });
  return mesh.principalOf(mesh.spiffeId(m[2]!));
}

function path(c: Checker, p: string, at: Segment[]): boolean {
  if (p.includes('{')) {
    c.error(at, `"${p}": path templates ({*}, {**}) are not supported by Concord; use a "*" prefix or suffix`);
    return false;
  }
  if (!wildcardOk(p)) {
    c.error(at, `"${p}": "*" is allowed only at the start or the end`);
    return false;
  }
  if (!p.startsWith('/') && !p.startsWith('*')) {
    c.error(at, `"${p}" must start with "/" (or "*" for a suffix match)`);
    return false;
  }
  return true;
}

function method(c: Checker, m: string, at: Segment[]): boolean {
  if (!wildcardOk(m) || !/^[A-Z*]+$/.test(m)) {
    // HTTP methods are case-sensitive: "get" would never match a GET.
    c.error(at, `"${m}" is not an HTTP method in upper case (GET, POST, …)`);
    return false;
  }
  return true;
}

type Rule = mesh.AuthorizationRule;

function rule(c: Checker, v: unknown, at: Segment[], apps: AppRef[]): Rule | null {
  if (v === null || v === undefined) {
    c.error(at, '`rule` must not be nil');
    return null;
  }
  const o = object(c, v, at, ['from', 'to'], { when: 'conditions (when) — use from and to' });
  if (!o) return null;
  const out: Rule = {};
  const before = c.issues.length;
  if (o.from !== undefined) {
    const froms = list(c, o.from, [...at, 'from'], { max: MAX_RULES });
    if (froms && froms.length === 0) c.error([...at, 'from'], '`from` must not be empty');
    out.from = [];
    froms?.forEach((f, i) => {
      const fat = [...at, 'from', i];
      const fo = object(c, f, fat, ['source']);
      if (!fo) {
        c.error(fat, '`from` must not be nil');
        return;
      }
      if (fo.source === undefined) {
        c.error([...fat, 'source'], '`from.source` must not be nil');
        return;
      }
      const src = object(c, fo.source, [...fat, 'source'], ['principals', 'notPrincipals'], SOURCE_UNSUPPORTED);
      if (!src) return;
      if (src.principals === undefined && src.notPrincipals === undefined) {
        if (isObj(fo.source) && Object.keys(fo.source).every((k) => !Object.hasOwn(SOURCE_UNSUPPORTED, k)))
          c.error([...fat, 'source'], '`from.source` must not be empty');
        return;
      }
      const entry: NonNullable<Rule['from']>[number] = {};
      for (const key of ['principals', 'notPrincipals'] as const) {
        if (src[key] === undefined) continue;
        const kat = [...fat, 'source', key];
        const values = stringList(c, src[key], kat, { max: MAX_VALUES, nonEmpty: true, maxLength: 512 });
        if (!values) continue;
        const normalised = values.map((p, j) => principal(c, p, [...kat, j], apps));
        if (normalised.every((p) => p !== null)) entry[key] = normalised as string[];
      }
      out.from!.push(entry);
    });
  }
  if (o.to !== undefined) {
    const tos = list(c, o.to, [...at, 'to'], { max: MAX_RULES });
    if (tos && tos.length === 0) c.error([...at, 'to'], '`to` must not be empty');
    out.to = [];
    tos?.forEach((t, i) => {
      const tat = [...at, 'to', i];
      const to = object(c, t, tat, ['operation']);
      if (!to) {
        c.error(tat, '`to` must not be nil');
        return;
      }
      if (to.operation === undefined) {
        c.error([...tat, 'operation'], '`to.operation` must not be nil');
        return;
      }
      const op = object(c, to.operation, [...tat, 'operation'], ['paths', 'notPaths', 'methods', 'notMethods'], OPERATION_UNSUPPORTED);
      if (!op) return;
      if (Object.keys(op).length === 0) {
        if (isObj(to.operation) && Object.keys(to.operation).every((k) => !Object.hasOwn(OPERATION_UNSUPPORTED, k)))
          c.error([...tat, 'operation'], '`to.operation` must not be empty');
        return;
      }
      const entry: NonNullable<Rule['to']>[number] = {};
      for (const key of ['paths', 'notPaths', 'methods', 'notMethods'] as const) {
        if (op[key] === undefined) continue;
        const kat = [...tat, 'operation', key];
        const values = stringList(c, op[key], kat, { max: MAX_VALUES, nonEmpty: true, maxLength: 2048 });
        if (!values) continue;
        const check = key.toLowerCase().includes('path') ? path : method;
        if (values.map((x, j) => check(c, x, [...kat, j])).every(Boolean)) entry[key] = values;
      }
      out.to!.push(entry);
    });
  }
  return c.issues.length === before ? out : null;
}

export function authorizationPolicy(c: Checker, spec: Obj, at: Segment[]): { value: Omit<mesh.AuthorizationPolicy, 'name'>; apps: AppRef[] } | null {
  const s = object(c, spec, at, ['selector', 'action', 'rules'], {
    provider: 'CUSTOM external authorizers',
    targetRef: 'Gateway API policy attachment; use selector',
    targetRefs: 'Gateway API policy attachment; use selector',
  });
  if (!s) return null;
  const apps: AppRef[] = [];
  const sel = selector(c, s.selector, [...at, 'selector'], apps);
  let action: 'ALLOW' | 'DENY' = 'ALLOW';
  if (s.action !== undefined) {
    const a = string(c, s.action, [...at, 'action']);
    if (a === 'AUDIT' || a === 'CUSTOM') c.error([...at, 'action'], `${a} is not supported by Concord (use ALLOW or DENY)`);
    else if (a !== undefined && a !== 'ALLOW' && a !== 'DENY')
      c.error([...at, 'action'], 'must be one of ALLOW, DENY (AUDIT and CUSTOM are not supported by Concord)');
    else if (a !== undefined) action = a;
  }
  const rules: Rule[] = [];
  const raw = list(c, s.rules, [...at, 'rules'], { max: MAX_RULES });
  raw?.forEach((r, i) => {
    const parsed = rule(c, r, [...at, 'rules', i], apps);
    if (parsed) rules.push(parsed);
  });
  if (action === 'DENY' && (!raw || raw.length === 0)) {
    // Istio's message, word for word.
    c.error(
      [...at, 'rules'],
      'DENY action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request',
    );
  }
  const value: Omit<mesh.AuthorizationPolicy, 'name'> = { action, rules };
  if (sel) value.selector = sel;
  return { value, apps };
}
