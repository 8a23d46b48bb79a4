/**
 * Validation of Istio resources into Concord's normalised mesh configuration. Pure: documents
 * (parsed YAML) and the set of known service names in; a MeshConfig or the list of problems out,
 * each with the resource, the field path and the reason.
 *
 * Two layers:
 * - one document: apiVersion, kind, metadata and the spec of its kind (networking.ts,
 *   security.ts);
 * - the whole candidate configuration (what would be in force if the change were applied):
 *   every referenced host is a service, every referenced subset is defined, one
 *   DestinationRule per host, one VirtualService per host, at most one mesh-wide and one
 *   PeerAuthentication or Telemetry per selector. Istio merges or silently picks the oldest in
 *   several of these cases (istio/istio#5272, #17165); Concord refuses them instead, naming both
 *   sides.
 */
import { mesh } from '@concord/core';
import { Checker, type Issue, type Obj, type Segment, isDns1123Subdomain, isObj, object, required, string, stringMap } from './fields.js';
import { unknownHostMessage } from './hosts.js';
import { type ServiceRef, destinationRule, virtualService } from './networking.js';
import { type AppRef, type PeerAuthDraft, authorizationPolicy, peerAuthentication } from './security.js';
import { telemetry } from './telemetry.js';

export type Kind = 'VirtualService' | 'DestinationRule' | 'PeerAuthentication' | 'AuthorizationPolicy' | 'Telemetry';
export const KINDS: readonly Kind[] = ['VirtualService', 'DestinationRule', 'PeerAuthentication', 'AuthorizationPolicy', 'Telemetry'];

const API_VERSIONS: Record<Kind, readonly string[]> = {
  VirtualService: ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'],
  DestinationRule: ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'],
  PeerAuthentication: ['security.istio.io/v1', 'security.istio.io/v1beta1'],
  AuthorizationPolicy: ['security.istio.io/v1', 'security.istio.io/v1beta1'],
  Telemetry: ['telemetry.istio.io/v1', 'telemetry.istio.io/v1alpha1'],
};

/** Istio kinds Concord knows of but does not implement. */
const OTHER_ISTIO_KINDS = [
  'Gateway',
  'ServiceEntry',
  'Sidecar',
  'EnvoyFilter',
  'WorkloadEntry',
  'WorkloadGroup',
  'RequestAuthentication',
  'ProxyConfig',
  'WasmPlugin',
];

/** Kubernetes' short names, accepted (case-insensitively) where a kind is named in a URL or a command. */
const KIND_ALIASES: Record<string, Kind> = {
  virtualservice: 'VirtualService',
  virtualservices: 'VirtualService',
  vs: 'VirtualService',
  destinationrule: 'DestinationRule',
  destinationrules: 'DestinationRule',
  dr: 'DestinationRule',
  peerauthentication: 'PeerAuthentication',
  peerauthentications: 'PeerAuthentication',
  pa: 'PeerAuthentication',
  authorizationpolicy: 'AuthorizationPolicy',
  authorizationpolicies: 'AuthorizationPolicy',
  ap: 'AuthorizationPolicy',
  telemetry: 'Telemetry',
  telemetries: 'Telemetry',
};

export function kindOf(name: string): Kind | null {
  return KIND_ALIASES[name.toLowerCase()] ?? null;
}

export function resourceKey(kind: Kind, name: string): string {
  return `${kind}/${name}`;
}

export interface Identity {
  kind: Kind;
  name: string;
  key: string;
}

/** The kind and name of a document, when both are usable. */
export function identify(doc: unknown): Identity | null {
  if (!isObj(doc) || typeof doc.kind !== 'string' || !KINDS.includes(doc.kind as Kind)) return null;
  const md = doc.metadata;
  if (!isObj(md) || typeof md.name !== 'string' || !isDns1123Subdomain(md.name)) return null;
  const kind = doc.kind as Kind;
  return { kind, name: md.name, key: resourceKey(kind, md.name) };
}

/** Istio's root configuration namespace: mesh-wide resources live there. */
const ROOT_NAMESPACE = 'istio-system';

const SERVER_SET = 'is set by the Kubernetes API server; remove it (it comes from `kubectl get -o yaml` output)';

type Parsed =
  | { kind: 'VirtualService'; value: mesh.VirtualService; hosts: ServiceRef[]; refs: ServiceRef[] }
  | { kind: 'DestinationRule'; value: mesh.DestinationRule; host: ServiceRef | null; subsetNames: string[] }
  | { kind: 'PeerAuthentication'; name: string; value: PeerAuthDraft; apps: AppRef[] }
  | { kind: 'AuthorizationPolicy'; value: mesh.AuthorizationPolicy; apps: AppRef[] }
  | { kind: 'Telemetry'; value: mesh.Telemetry; apps: AppRef[] };

/**
 * Validates one document on its own. `label` names it when it has no usable kind/name.
 * `parsed` is what could be read even when there are problems (for the cross-resource checks);
 * it belongs in a configuration only when `issues` is empty.
 */
export function validateDocument(doc: unknown, label: string): { parsed: Parsed | null; issues: Issue[] } {
  const id = identify(doc);
  const c = new Checker(id ? id.key : label);
  if (!isObj(doc)) {
    c.error([], 'must be a mapping with apiVersion, kind, metadata and spec');
    return { parsed: null, issues: c.issues };
  }
  const top = object(c, doc, [], ['apiVersion', 'kind', 'metadata', 'spec'], { status: 'status is written by the server, not by users' }) as Obj;
  const kindRaw = string(c, required(c, top, 'kind', []), ['kind']);
  let kind: Kind | null = null;
  if (kindRaw !== undefined) {
    if (KINDS.includes(kindRaw as Kind)) kind = kindRaw as Kind;
    else if (OTHER_ISTIO_KINDS.includes(kindRaw)) c.error(['kind'], `${kindRaw} is not supported by Concord (supported: ${KINDS.join(', ')})`);
    else c.error(['kind'], `unknown kind "${kindRaw}" (supported: ${KINDS.join(', ')})`);
  }
  const apiVersion = string(c, required(c, top, 'apiVersion', []), ['apiVersion']);
  if (kind && apiVersion !== undefined && !API_VERSIONS[kind].includes(apiVersion)) {
    c.error(['apiVersion'], `${kind} must use apiVersion ${API_VERSIONS[kind].join(', ')} (got "${apiVersion}")`);
  }
  const md = object(c, required(c, top, 'metadata', []), ['metadata'], ['name', 'namespace', 'labels', 'annotations'], {
    generateName: 'give the resource a fixed name',
    uid: SERVER_SET,
    resourceVersion: SERVER_SET,
    generation: SERVER_SET,
    creationTimestamp: SERVER_SET,
    deletionTimestamp: SERVER_SET,
    deletionGracePeriodSeconds: SERVER_SET,
    managedFields: SERVER_SET,
    selfLink: SERVER_SET,
    ownerReferences: 'Kubernetes garbage collection',
    finalizers: 'Kubernetes finalizers',
  });
  if (md) {
    const name = string(c, required(c, md, 'name', ['metadata']), ['metadata', 'name'], { max: 253 });
    if (name !== undefined && !isDns1123Subdomain(name)) {
      c.error(
        ['metadata', 'name'],
        `"${name}" is not a valid name: lower-case letters, digits, "-" and ".", starting and ending with a letter or digit, at most 253`,
      );
    }
    const ns = string(c, md.namespace, ['metadata', 'namespace'], { max: 63 });
    // Istio's mesh-wide Telemetry lives in its root namespace, istio-system; with one namespace
    // that is the same scope as "default", so Istio's own examples apply unchanged.
    if (ns !== undefined && ns !== 'default' && !(kind === 'Telemetry' && ns === ROOT_NAMESPACE)) {
      c.error(
        ['metadata', 'namespace'],
        `must be "default"${kind === 'Telemetry' ? ` or "${ROOT_NAMESPACE}"` : ''} or left out: Concord has one namespace (got "${ns}")`,
      );
    }
    stringMap(c, md.labels, ['metadata', 'labels'], { maxKeys: 64, maxLength: 63 });
    stringMap(c, md.annotations, ['metadata', 'annotations'], { maxKeys: 64, maxLength: 262_144 });
  }
  const specRaw = required(c, top, 'spec', []);
  if (specRaw !== undefined && !isObj(specRaw)) c.error(['spec'], 'must be a mapping');
  if (!kind || !isObj(specRaw)) return { parsed: null, issues: c.issues };
  const spec = specRaw as Obj;
  const at: Segment[] = ['spec'];
  const name = id?.name ?? '';
  let parsed: Parsed | null = null;
  switch (kind) {
    case 'VirtualService': {
      const r = virtualService(c, spec, at);
      if (r) parsed = { kind, value: { name, ...r.value }, hosts: r.hosts, refs: r.refs };
      break;
    }
    case 'DestinationRule': {
      const r = destinationRule(c, spec, at);
      if (r) parsed = { kind, value: { name, ...r.value }, host: r.host, subsetNames: r.subsetNames };
      break;
    }
    case 'PeerAuthentication': {
      const r = peerAuthentication(c, spec, at);
      if (r) parsed = { kind, name, value: r.value, apps: r.apps };
      break;
    }
    case 'AuthorizationPolicy': {
      const r = authorizationPolicy(c, spec, at);
      if (r) parsed = { kind, value: { name, ...r.value }, apps: r.apps };
      break;
    }
    case 'Telemetry': {
      // Istio applies a selector in the root namespace to that namespace's own workloads only,
      // never to applications; a copied resource would silently mean something else here.
      if (isObj(md) && md.namespace === ROOT_NAMESPACE && spec.selector !== undefined) {
        c.error(['spec', 'selector'], `a Telemetry in ${ROOT_NAMESPACE} selects only ${ROOT_NAMESPACE}'s own workloads in Istio; put a workload's Telemetry in "default" (or leave the namespace out)`);
      }
      const r = telemetry(c, spec, at);
      if (r) parsed = { kind, value: { name, ...r.value }, apps: r.apps };
      break;
    }
  }
  return { parsed: id ? parsed : null, issues: c.issues };
}

export interface Candidate {
  /** `Kind/name`. */
  key: string;
  doc: unknown;
  /** Submitted in this change (host checks apply); unchanged resources were valid when applied. */
  changed: boolean;
}

export interface SetOptions {
  /** Service names a host may name; null skips the check (restoring a configuration from disk). */
  knownHosts: ReadonlySet<string> | null;
}

export interface SetResult {
  config: Omit<mesh.MeshConfig, 'version'>;
  issues: Issue[];
}

function byName<T extends { name: string }>(a: T, b: T): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/**
 * Validates a whole candidate configuration. Unchanged resources are visited first, so a
 * conflict between an applied resource and a submitted one is reported on the submitted one.
 */
export function validateSet(candidates: readonly Candidate[], opts: SetOptions): SetResult {
  const issues: Issue[] = [];
  const ordered = [...candidates.filter((c) => !c.changed), ...candidates.filter((c) => c.changed)];
  const parsed: Array<{ cand: Candidate; p: Parsed; valid: boolean }> = [];
  for (const cand of ordered) {
    const r = validateDocument(cand.doc, cand.key);
    issues.push(...r.issues);
    if (r.parsed) parsed.push({ cand, p: r.parsed, valid: r.issues.length === 0 });
  }
  const err = (resource: string, at: Segment[], message: string) => {
    const c = new Checker(resource);
    c.error(at, message);
    issues.push(...c.issues);
  };
  const known = (cand: Candidate, service: string, at: Segment[]) => {
    if (cand.changed && opts.knownHosts && !opts.knownHosts.has(service)) err(cand.key, at, unknownHostMessage(service, opts.knownHosts));
  };

  // One DestinationRule per host: Istio merges several (and only for some fields); Concord refuses.
  const drByHost = new Map<string, { key: string; subsets: string[] }>();
  for (const { cand, p } of parsed) {
    if (p.kind !== 'DestinationRule' || !p.host) continue;
    known(cand, p.host.service, p.host.at);
    const prev = drByHost.get(p.host.service);
    if (prev) err(cand.key, p.host.at, `host "${p.host.service}" already has ${prev.key}; Concord allows one DestinationRule per host (merge them)`);
    else drByHost.set(p.host.service, { key: cand.key, subsets: p.subsetNames });
  }

  // One VirtualService per host: for sidecars Istio uses only one of several (istio/istio#17165).
  const vsByHost = new Map<string, string>();
  for (const { cand, p } of parsed) {
    if (p.kind !== 'VirtualService') continue;
    for (const h of p.hosts) {
      known(cand, h.service, h.at);
      const prev = vsByHost.get(h.service);
      if (prev) err(cand.key, h.at, `host "${h.service}" is already routed by ${prev}; Concord allows one VirtualService per host (merge their http routes)`);
      else vsByHost.set(h.service, cand.key);
    }
    for (const ref of p.refs) {
      known(cand, ref.service, ref.at);
      if (!ref.subset) continue;
      const dr = drByHost.get(ref.service);
      if (!dr) {
        err(cand.key, ref.subset.at, `subset "${ref.subset.name}" is not defined: no DestinationRule has host "${ref.service}"`);
      } else if (!dr.subsets.includes(ref.subset.name)) {
        const names = dr.subsets;
        err(
          cand.key,
          ref.subset.at,
          `subset "${ref.subset.name}" is not defined by ${dr.key} (it defines ${names.length > 0 ? names.join(', ') : 'no subsets'})`,
        );
      }
    }
  }

  // PeerAuthentication and Telemetry: Istio allows one mesh-wide resource and one selecting any
  // given workload, and silently picks the oldest of several; Concord refuses a second one with
  // the same selector, naming the first. (Istio layers a namespace's selector-less resource over
  // the root namespace's; with one namespace those are the same scope here.)
  const firstBySelector = new Map<string, string>();
  const oneBySelector = (cand: Candidate, kind: Kind, selector: Record<string, string> | undefined) => {
    const sel = `${kind}:${selector ? JSON.stringify(Object.entries(selector).sort()) : ''}`;
    const prev = firstBySelector.get(sel);
    if (!prev) firstBySelector.set(sel, cand.key);
    else {
      const scope = selector ? 'the same workloads' : `the whole mesh (no selector${kind === 'Telemetry' ? '; Concord has one namespace, so istio-system and default are one scope' : ''})`;
      err(cand.key, selector ? ['spec', 'selector'] : ['spec'], `${prev} already applies to ${scope}; Concord allows one`);
    }
  };
  const pas: Array<{ name: string; draft: PeerAuthDraft }> = [];
  for (const { cand, p, valid } of parsed) {
    if ('apps' in p) for (const a of p.apps) known(cand, a.service, a.at);
    if (p.kind === 'PeerAuthentication') {
      oneBySelector(cand, p.kind, p.value.selector);
      if (valid) pas.push({ name: p.name, draft: p.value });
    } else if (p.kind === 'Telemetry') oneBySelector(cand, p.kind, p.value.selector);
  }
  // UNSET inherits from the parent: for a workload policy the mesh-wide one, for the mesh-wide
  // one Istio's default, PERMISSIVE. Concord has one namespace, so namespace and mesh coincide.
  const meshWide = pas.find((p) => !p.draft.selector);
  const meshMode: mesh.MtlsMode = meshWide && meshWide.draft.mode !== 'UNSET' ? meshWide.draft.mode : 'PERMISSIVE';
  const peerAuthentications = pas.map(({ name, draft }): mesh.PeerAuthentication => {
    const pa: mesh.PeerAuthentication = { name, mode: draft.mode === 'UNSET' ? meshMode : draft.mode };
    if (draft.selector) pa.selector = draft.selector;
    return pa;
  });

  const valid = parsed.filter((x) => x.valid).map((x) => x.p);
  const config: Omit<mesh.MeshConfig, 'version'> = {
    virtualServices: valid.flatMap((p) => (p.kind === 'VirtualService' ? [p.value] : [])).sort(byName),
    destinationRules: valid.flatMap((p) => (p.kind === 'DestinationRule' ? [p.value] : [])).sort(byName),
    peerAuthentications: peerAuthentications.sort(byName),
    authorizationPolicies: valid.flatMap((p) => (p.kind === 'AuthorizationPolicy' ? [p.value] : [])).sort(byName),
    telemetries: valid.flatMap((p) => (p.kind === 'Telemetry' ? [p.value] : [])).sort(byName),
  };
  return { config, issues };
}

/** The empty configuration at a version. */
export function emptyConfig(version = 0): mesh.MeshConfig {
  return mesh.emptyMeshConfig(version);
}
