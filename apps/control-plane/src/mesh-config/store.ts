/**
 * The applied mesh configuration: the resources in force (as submitted), their normalised
 * form at a version, the status of the latest submission of every resource, and which
 * version each data plane acknowledged. Pure — time enters as `nowMs`, the known services as
 * an argument; the shell (service.ts) persists snapshots and wakes watchers.
 *
 * A change is all-or-nothing: the submitted documents are validated together with the
 * configuration in force (a submitted resource replaces the one with its kind and name; the
 * others stay), and if anything is wrong nothing changes — the last good configuration stays
 * in force and every submitted resource is recorded as rejected, with its reason.
 */
import { mesh } from '@concord/core';
import type { Issue, Obj } from './fields.js';
import type { ParsedDocument, StreamError } from './parse.js';
import { KINDS, type Kind, identify, resourceKey, validateDocument, validateSet } from './validate.js';

export const MAX_RESOURCES = 1000;
const MAX_STATUS = 2000;
const MAX_ACKS = 10_000;
const MAX_REASON_CHARS = 2000;

export interface StoredResource {
  kind: Kind;
  name: string;
  /** The document as submitted (YAML as JSON). */
  doc: Obj;
  source: string;
  /** The configuration version that applied this copy. */
  version: number;
  appliedAt: string;
}

export interface StatusError {
  field: string;
  message: string;
  line?: number;
}

export interface ResourceStatus {
  /** A Concord kind — or, for a document that could not be identified, what it said (or `-`). */
  kind: Kind | string;
  /** The resource's name, or `(document N)` / `(stream)` when it has none. */
  name: string;
  state: 'applied' | 'rejected';
  /** Applied: the version that applied it. Rejected: the version in force when it was refused. */
  version: number;
  source: string;
  /** When it was applied (applied), or when the copy still in force was (rejected). */
  appliedAt?: string;
  rejectedAt?: string;
  /** Rejected: why, in one line. */
  reason?: string;
  errors?: StatusError[];
  /** Rejected while an earlier copy stays in force: the version that applied that copy. */
  inForceVersion?: number;
}

export interface Ack {
  instanceId: string;
  version: number;
  error?: string;
  /** The data plane's tracing as it reported it with this acknowledgement. */
  tracing?: mesh.TracingReport;
  ackedAt: string;
}

/** One problem, as the API reports it: `path` names the resource and the field. */
export interface ApiError {
  path: string;
  message: string;
  resource: string;
  field: string;
  source?: string;
  line?: number;
  col?: number;
}

export type ApplyResult =
  | {
      ok: true;
      version: number;
      changed: boolean;
      applied: Array<{ kind: Kind; name: string; action: 'created' | 'configured' | 'unchanged'; source: string }>;
      deleted: Array<{ kind: Kind; name: string }>;
    }
  | { ok: false; version: number; errors: ApiError[]; rejected: Array<{ kind: Kind; name: string; reason: string }> };

export type RemoveResult = { ok: true; version: number } | { ok: false; status: 404 | 409; detail: string; errors: ApiError[] };

export interface Snapshot {
  format: 1;
  version: number;
  resources: StoredResource[];
  /** Status entries with their keys (`Kind/name`, or `?<source>#<where>` for unidentified documents). */
  status: Array<ResourceStatus & { key: string }>;
  acks: Ack[];
}

export interface Submission {
  /** Where the change comes from when documents do not say: `api`, `cli`. */
  source: string;
  documents: readonly ParsedDocument[];
  streamErrors: readonly StreamError[];
  /** A configuration directory's resources: those it owns and no longer lists are deleted. */
  prune?: (r: StoredResource) => boolean;
}

/** JSON with sorted keys: equal documents compare equal whatever their key order. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Obj)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function kindOrder(a: { kind: string; name: string }, b: { kind: string; name: string }): number {
  return KINDS.indexOf(a.kind as Kind) - KINDS.indexOf(b.kind as Kind) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/** Sources that replace each other's unidentified entries: a configuration directory's files, the API, the CLI. */
function family(source: string): string {
  return source.startsWith('file:') ? 'file:' : source;
}

/** Status key of a document without a usable kind and name (or of a whole unreadable stream). */
function unidentifiedKey(source: string, where: string): string {
  return `?${source}#${where}`;
}

function summary(errors: readonly { field: string; message: string }[]): string {
  const text = errors.map((e) => (e.field ? `${e.field}: ${e.message}` : e.message)).join('; ');
  return text.length > MAX_REASON_CHARS ? `${text.slice(0, MAX_REASON_CHARS - 1)}…` : text;
}

export class MeshConfigStore {
  private ver = 0;
  private readonly resources = new Map<string, StoredResource>();
  private readonly statuses = new Map<string, ResourceStatus>();
  private readonly acks = new Map<string, Ack>();
  private current: mesh.MeshConfig = mesh.emptyMeshConfig(0);

  get version(): number {
    return this.ver;
  }

  /** The normalised configuration in force. */
  get config(): mesh.MeshConfig {
    return this.current;
  }

  /** The resources in force, as submitted. */
  applied(): StoredResource[] {
    return [...this.resources.values()].sort(kindOrder);
  }

  status(): ResourceStatus[] {
    return [...this.statuses.values()].sort(kindOrder);
  }

  ackList(): Ack[] {
    return [...this.acks.values()].sort((a, b) => (a.instanceId < b.instanceId ? -1 : 1));
  }

  /** Validates a change against the configuration in force and applies it, or nothing. */
  apply(sub: Submission, knownHosts: ReadonlySet<string>, nowMs: number): ApplyResult {
    const errors: ApiError[] = [];
    const sourceOf = (d: ParsedDocument) => d.source || sub.source;
    const label = (d: ParsedDocument) => `document ${d.number}`;

    for (const e of sub.streamErrors) {
      // A syntax error in a document whose kind and name could still be read is that resource's.
      const doc = sub.documents.find((d) => `document ${d.number}` === e.where && d.source === e.source);
      const key = doc ? identify(doc.value)?.key : undefined;
      errors.push({ path: key ? `${key} (${e.where})` : e.where, message: e.message, resource: key ?? e.where, field: '', source: e.source, line: e.line, col: e.col });
    }

    // Identify the documents; a kind+name given twice is an error on the later one.
    const stream = new Map<string, ParsedDocument>();
    const byKey = new Map<string, ParsedDocument>();
    const extraIssues: Array<{ issue: Issue; doc: ParsedDocument }> = [];
    for (const d of sub.documents) {
      const id = identify(d.value);
      if (!id) continue;
      const first = byKey.get(id.key);
      if (first) {
        const where = first.source === d.source ? `document ${first.number}` : `document ${first.number} of ${first.source}`;
        extraIssues.push({
          issue: { resource: id.key, field: 'metadata.name', message: `${id.key} is defined twice in this change (also ${where})`, at: ['metadata', 'name'] },
          doc: d,
        });
        continue;
      }
      byKey.set(id.key, d);
      stream.set(id.key, d);
    }

    // The candidate configuration: what would be in force.
    const pruned = sub.prune ? [...this.resources.values()].filter((r) => sub.prune?.(r) && !stream.has(resourceKey(r.kind, r.name))) : [];
    const prunedKeys = new Set(pruned.map((r) => resourceKey(r.kind, r.name)));
    const candidates = [];
    for (const [key, r] of this.resources) if (!prunedKeys.has(key) && !stream.has(key)) candidates.push({ key, doc: r.doc as unknown, changed: false });
    for (const [key, d] of stream) {
      const prev = this.resources.get(key);
      candidates.push({ key, doc: d.value, changed: !prev || canonical(prev.doc) !== canonical(d.value) });
    }
    const result = validateSet(candidates, { knownHosts });
    const issues = [...result.issues];

    // Documents without a usable kind and name are validated alone, to report why.
    for (const d of sub.documents) {
      if (identify(d.value)) continue;
      const r = validateDocument(d.value, label(d));
      for (const issue of r.issues) extraIssues.push({ issue, doc: d });
      if (r.issues.length === 0)
        extraIssues.push({ issue: { resource: label(d), field: '', message: 'has no usable kind and metadata.name', at: [] }, doc: d });
    }
    if (candidates.length > MAX_RESOURCES) {
      const first = stream.values().next().value as ParsedDocument | undefined;
      if (first) {
        const id = identify(first.value);
        extraIssues.push({
          issue: {
            resource: id?.key ?? label(first),
            field: '',
            message: `the configuration would hold ${candidates.length} resources; the limit is ${MAX_RESOURCES}`,
            at: [],
          },
          doc: first,
        });
      }
    }

    const toApi = (issue: Issue, doc: ParsedDocument | undefined): ApiError => {
      const pos = doc?.locate(issue.at);
      const e: ApiError = {
        path: issue.field ? `${issue.resource}: ${issue.field}` : issue.resource,
        message: issue.message,
        resource: issue.resource,
        field: issue.field,
      };
      if (doc) e.source = sourceOf(doc);
      else {
        const r = this.resources.get(issue.resource);
        if (r) e.source = r.source;
      }
      if (pos) {
        e.line = pos.line;
        e.col = pos.col;
      }
      return e;
    };
    for (const issue of issues) errors.push(toApi(issue, stream.get(issue.resource)));
    for (const { issue, doc } of extraIssues) errors.push(toApi(issue, doc));

    this.forgetUnidentified(sub);
    if (errors.length > 0) {
      this.recordUnidentified(sub, errors, nowMs);
      const rejected: Array<{ kind: Kind; name: string; reason: string }> = [];
      const own = new Map<string, StatusError[]>();
      for (const e of errors) {
        // Syntax errors are attributed to the document they are in.
        const doc = e.resource.startsWith('document ')
          ? sub.documents.find((d) => `document ${d.number}` === e.resource && sourceOf(d) === e.source)
          : undefined;
        const key = doc ? identify(doc.value)?.key : e.resource;
        if (!key) continue;
        const list = own.get(key) ?? [];
        list.push({ field: e.field, message: e.message, ...(e.line !== undefined ? { line: e.line } : {}) });
        own.set(key, list);
      }
      for (const d of sub.documents) {
        const id = identify(d.value);
        if (!id) continue;
        const mine = own.get(id.key) ?? [];
        const prev = this.resources.get(id.key);
        if (mine.length === 0 && prev && canonical(prev.doc) === canonical(d.value)) {
          // Submitted again unchanged (a directory re-read): what is in force is what was sent.
          this.setStatus(id.key, { kind: id.kind, name: id.name, state: 'applied', version: prev.version, source: prev.source, appliedAt: prev.appliedAt });
          continue;
        }
        const reason =
          mine.length > 0
            ? summary(mine)
            : `not applied: the change it came with was rejected (${summary(
                errors
                  .filter((e) => e.resource !== id.key)
                  .slice(0, 3)
                  .map((e) => ({ field: e.resource + (e.field ? `: ${e.field}` : ''), message: e.message })),
              )})`;
        rejected.push({ kind: id.kind, name: id.name, reason });
        const st: ResourceStatus = {
          kind: id.kind,
          name: id.name,
          state: 'rejected',
          version: this.ver,
          source: sourceOf(d),
          rejectedAt: iso(nowMs),
          reason,
          errors: mine,
        };
        if (prev) {
          st.inForceVersion = prev.version;
          st.appliedAt = prev.appliedAt;
        }
        this.setStatus(id.key, st);
      }
      return { ok: false, version: this.ver, errors, rejected };
    }

    // Apply.
    const applied: Array<{ kind: Kind; name: string; action: 'created' | 'configured' | 'unchanged'; source: string }> = [];
    let contentChanged = pruned.length > 0;
    for (const [key, d] of stream) {
      const prev = this.resources.get(key);
      const id = identify(d.value) as NonNullable<ReturnType<typeof identify>>;
      const same = prev !== undefined && canonical(prev.doc) === canonical(d.value);
      if (!same) contentChanged = true;
      applied.push({
        kind: id.kind,
        name: id.name,
        action: !prev ? 'created' : same && prev.source === sourceOf(d) ? 'unchanged' : 'configured',
        source: sourceOf(d),
      });
    }
    const version = contentChanged ? this.ver + 1 : this.ver;
    const at = iso(nowMs);
    for (const r of pruned) {
      const key = resourceKey(r.kind, r.name);
      this.resources.delete(key);
      this.statuses.delete(key);
    }
    for (const [key, d] of stream) {
      const prev = this.resources.get(key);
      const id = identify(d.value) as NonNullable<ReturnType<typeof identify>>;
      const same = prev !== undefined && canonical(prev.doc) === canonical(d.value);
      const stored: StoredResource = same
        ? { ...prev, source: sourceOf(d) }
        : { kind: id.kind, name: id.name, doc: d.value as Obj, source: sourceOf(d), version, appliedAt: at };
      this.resources.set(key, stored);
      this.setStatus(key, { kind: id.kind, name: id.name, state: 'applied', version: stored.version, source: stored.source, appliedAt: stored.appliedAt });
    }
    this.ver = version;
    this.current = { version, ...result.config };
    return { ok: true, version, changed: contentChanged, applied, deleted: pruned.map((r) => ({ kind: r.kind, name: r.name })) };
  }

  /** Deletes a resource, unless the rest of the configuration depends on it (409). */
  remove(kind: Kind, name: string): RemoveResult {
    const key = resourceKey(kind, name);
    if (!this.resources.has(key)) {
      // A rejected submission that never took effect: forget its status.
      const had = this.statuses.delete(key);
      return { ok: false, status: 404, detail: `${key} is not in the applied configuration${had ? ' (its rejected status was cleared)' : ''}`, errors: [] };
    }
    const candidates = [...this.resources].filter(([k]) => k !== key).map(([k, r]) => ({ key: k, doc: r.doc as unknown, changed: false }));
    const result = validateSet(candidates, { knownHosts: null });
    if (result.issues.length > 0) {
      const errors = result.issues.map((i) => ({
        path: i.field ? `${i.resource}: ${i.field}` : i.resource,
        message: i.message,
        resource: i.resource,
        field: i.field,
        source: this.resources.get(i.resource)?.source,
      }));
      return {
        ok: false,
        status: 409,
        detail: `deleting ${key} would leave ${[...new Set(errors.map((e) => e.resource))].join(', ')} invalid; change or delete ${errors.length === 1 ? 'it' : 'them'} first`,
        errors,
      };
    }
    this.resources.delete(key);
    this.statuses.delete(key);
    this.ver++;
    this.current = { version: this.ver, ...result.config };
    return { ok: true, version: this.ver };
  }

  ack(instanceId: string, version: number, error: string | undefined, nowMs: number, tracing?: mesh.TracingReport): void {
    this.acks.delete(instanceId);
    this.acks.set(instanceId, { instanceId, version, ...(error ? { error } : {}), ...(tracing ? { tracing } : {}), ackedAt: iso(nowMs) });
    // Bounded: the least recently acknowledging instance goes first (Map keeps insertion order).
    while (this.acks.size > MAX_ACKS) this.acks.delete(this.acks.keys().next().value as string);
  }

  /** Entries of unidentified documents from the same kind of source are replaced by this attempt's. */
  private forgetUnidentified(sub: Submission): void {
    const families = new Set([family(sub.source), ...sub.documents.map((d) => family(d.source)), ...sub.streamErrors.map((e) => family(e.source))]);
    for (const [key, st] of this.statuses) if (key.startsWith('?') && families.has(family(st.source))) this.statuses.delete(key);
  }

  /** Documents without a usable kind and name (and unreadable streams) are listed too: nothing is silently dropped. */
  private recordUnidentified(sub: Submission, errors: readonly ApiError[], nowMs: number): void {
    const add = (source: string, where: string, kind: string, name: string) => {
      const mine = errors.filter((e) => e.resource === where && (e.source ?? sub.source) === source);
      if (mine.length === 0) return;
      const list = mine.map((e) => ({ field: e.field, message: e.message, ...(e.line !== undefined ? { line: e.line } : {}) }));
      this.setStatus(unidentifiedKey(source, where), { kind, name, state: 'rejected', version: this.ver, source, rejectedAt: iso(nowMs), reason: summary(list), errors: list });
    };
    for (const d of sub.documents) {
      if (identify(d.value)) continue;
      const v = d.value as { kind?: unknown; metadata?: { name?: unknown } } | null;
      const kind = typeof v?.kind === 'string' ? v.kind.slice(0, 64) : '-';
      const name = typeof v?.metadata?.name === 'string' ? v.metadata.name.slice(0, 253) : `(document ${d.number})`;
      add(d.source || sub.source, `document ${d.number}`, kind, name);
    }
    for (const e of sub.streamErrors) {
      if (e.where === 'stream') add(e.source, 'stream', '-', '(stream)');
      // A document so broken that it could not be read at all.
      else if (!sub.documents.some((d) => `document ${d.number}` === e.where && d.source === e.source)) add(e.source, e.where, '-', `(${e.where})`);
    }
  }

  private setStatus(key: string, st: ResourceStatus): void {
    this.statuses.delete(key);
    this.statuses.set(key, st);
    if (this.statuses.size <= MAX_STATUS) return;
    // Forget the oldest rejections of resources that are not in force.
    for (const [k, s] of this.statuses) {
      if (this.statuses.size <= MAX_STATUS) break;
      if (s.state === 'rejected' && !this.resources.has(k)) this.statuses.delete(k);
    }
  }

  snapshot(): Snapshot {
    return { format: 1, version: this.ver, resources: this.applied(), status: [...this.statuses].map(([key, st]) => ({ key, ...st })), acks: this.ackList() };
  }

  /**
   * Restores a snapshot. The resources are re-validated (without host checks: services may not
   * have registered yet); problems are returned — the configuration is kept regardless, since it
   * was valid when applied — so the shell can report them loudly.
   */
  restore(snap: Snapshot): Issue[] {
    this.ver = snap.version;
    this.resources.clear();
    for (const r of snap.resources) this.resources.set(resourceKey(r.kind, r.name), r);
    this.statuses.clear();
    for (const { key, ...st } of snap.status) this.statuses.set(key, st);
    this.acks.clear();
    for (const a of snap.acks) this.acks.set(a.instanceId, a);
    const result = validateSet(
      [...this.resources].map(([key, r]) => ({ key, doc: r.doc as unknown, changed: false })),
      { knownHosts: null },
    );
    this.current = { version: this.ver, ...result.config };
    return result.issues;
  }
}
