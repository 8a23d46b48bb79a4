/**
 * The registry catalog: services, their checks and Consul's modify indexes. Pure — time enters
 * as `nowMs` arguments, and every mutation returns the names of the services whose index moved,
 * so the shell can wake blocking queries and persist.
 */
import { invariant } from '@concord/core';

export type CheckStatus = 'passing' | 'warning' | 'critical';

export interface CheckSpec {
  checkId: string;
  name: string;
  type: 'http' | 'ttl';
  http?: string;
  intervalMs?: number;
  timeoutMs?: number;
  ttlMs?: number;
  deregisterAfterMs?: number;
  /** Consecutive tolerable failures (timeouts) before the check turns critical (Consul's field; default 1). */
  failuresBeforeCritical?: number;
  /** The check as registered (Consul's `Definition` fields, as strings). */
  definition: Record<string, string>;
}

export interface CheckState extends CheckSpec {
  status: CheckStatus;
  output: string;
  notes: string;
  /** When the check last entered critical (ms), or null. */
  criticalSinceMs: number | null;
  /** When a TTL check expires (ms). */
  ttlDeadlineMs: number | null;
  /** Tolerable failures in a row so far. */
  consecutiveFailures: number;
  createIndex: number;
  modifyIndex: number;
}

export interface ServiceSpec {
  id: string;
  name: string;
  address: string;
  port: number;
  tags: string[];
  meta: Record<string, string>;
  weights: { Passing: number; Warning: number };
  checks: CheckSpec[];
}

export interface ServiceState extends Omit<ServiceSpec, 'checks'> {
  checks: CheckState[];
  createIndex: number;
  modifyIndex: number;
  registeredAtMs: number;
}

export interface Snapshot {
  index: number;
  services: ServiceState[];
}

export const NODE_NAME = 'concord';

export class Catalog {
  private idx = 1;
  private readonly services = new Map<string, ServiceState>();
  private readonly checks = new Map<string, { serviceId: string; check: CheckState }>();
  /** Last index at which each service name changed (kept after deregistration). */
  private readonly nameIndex = new Map<string, number>();

  constructor(readonly maxServices = 10_000) {}

  get index(): number {
    return this.idx;
  }

  indexOf(name: string): number {
    return this.nameIndex.get(name) ?? 1;
  }

  private bump(name: string): number {
    this.idx++;
    this.nameIndex.set(name, this.idx);
    return this.idx;
  }

  /** Registers or replaces an instance. New checks start critical (HTTP) or as given (TTL), as in Consul. */
  register(spec: ServiceSpec, nowMs: number): string[] {
    const prev = this.services.get(spec.id);
    if (!prev && this.services.size >= this.maxServices) throw new RangeError(`registry full (${this.maxServices} instances)`);
    const changed = new Set<string>([spec.name]);
    if (prev) {
      changed.add(prev.name);
      for (const c of prev.checks) this.checks.delete(c.checkId);
    }
    const index = this.bump(spec.name);
    const checks: CheckState[] = spec.checks.map((c) => {
      const old = prev?.checks.find((o) => o.checkId === c.checkId);
      const status: CheckStatus = old?.status ?? (c.definition.Status as CheckStatus | undefined) ?? 'critical';
      return {
        ...c,
        status,
        output: old?.output ?? (c.type === 'ttl' ? 'TTL check awaiting first update' : 'check has not run yet'),
        notes: '',
        criticalSinceMs: status === 'critical' ? (old?.criticalSinceMs ?? nowMs) : null,
        ttlDeadlineMs: c.type === 'ttl' ? nowMs + (c.ttlMs ?? 0) : null,
        consecutiveFailures: 0,
        createIndex: old?.createIndex ?? index,
        modifyIndex: index,
      };
    });
    const state: ServiceState = {
      ...spec,
      checks,
      createIndex: prev?.createIndex ?? index,
      modifyIndex: index,
      registeredAtMs: prev?.registeredAtMs ?? nowMs,
    };
    this.services.set(spec.id, state);
    for (const c of checks) {
      invariant(!this.checks.has(c.checkId) || this.checks.get(c.checkId)?.serviceId === spec.id, `check id ${c.checkId} belongs to another service`);
      this.checks.set(c.checkId, { serviceId: spec.id, check: c });
    }
    if (prev && prev.name !== spec.name) this.bump(prev.name);
    return [...changed];
  }

  /** True when the check id is free or already belongs to this service id. */
  checkIdAvailable(checkId: string, serviceId: string): boolean {
    const owner = this.checks.get(checkId);
    return !owner || owner.serviceId === serviceId;
  }

  deregister(id: string): string[] {
    const prev = this.services.get(id);
    if (!prev) return [];
    this.services.delete(id);
    for (const c of prev.checks) this.checks.delete(c.checkId);
    this.bump(prev.name);
    return [prev.name];
  }

  hasCheck(checkId: string): boolean {
    return this.checks.has(checkId);
  }

  getCheck(checkId: string): CheckState | undefined {
    return this.checks.get(checkId)?.check;
  }

  /**
   * Sets a check's status; the index moves only when the status changes. A `tolerable` critical
   * result (a timeout) keeps the previous status until FailuresBeforeCritical of them in a row.
   */
  updateCheck(checkId: string, status: CheckStatus, output: string, nowMs: number, tolerable = false): string[] {
    const entry = this.checks.get(checkId);
    if (!entry) return [];
    const { check } = entry;
    if (status === 'critical' && tolerable) {
      check.consecutiveFailures = (check.consecutiveFailures ?? 0) + 1;
      if (check.consecutiveFailures < (check.failuresBeforeCritical ?? 1)) {
        check.output = `${output.slice(0, 4000)} (${check.consecutiveFailures} of ${check.failuresBeforeCritical} before critical)`;
        return [];
      }
    } else check.consecutiveFailures = 0;
    const svc = this.services.get(entry.serviceId);
    invariant(svc, `check ${checkId} has no service`);
    if (check.type === 'ttl' && check.ttlMs !== undefined) check.ttlDeadlineMs = nowMs + check.ttlMs;
    if (check.status === status && check.output === output) return [];
    if (status === 'critical' && check.status !== 'critical') check.criticalSinceMs = nowMs;
    if (status !== 'critical') check.criticalSinceMs = null;
    const statusChanged = check.status !== status;
    check.status = status;
    check.output = output.slice(0, 4096);
    // Output-only changes are not worth waking every watcher for; Consul has the same knob
    // (check_update_interval). Status changes always move the index.
    if (!statusChanged) return [];
    check.modifyIndex = this.bump(svc.name);
    return [svc.name];
  }

  /** TTL checks past their deadline turn critical. */
  expireTtl(nowMs: number): string[] {
    const changed: string[] = [];
    for (const { check } of this.checks.values()) {
      if (check.type !== 'ttl' || check.ttlDeadlineMs === null || nowMs < check.ttlDeadlineMs) continue;
      if (check.status === 'critical') continue;
      changed.push(...this.updateCheck(check.checkId, 'critical', `TTL expired (${check.ttlMs} ms without an update)`, nowMs));
    }
    return changed;
  }

  /** Services whose check has been critical longer than its DeregisterCriticalServiceAfter. */
  reap(nowMs: number): { id: string; name: string }[] {
    const gone: { id: string; name: string }[] = [];
    for (const svc of this.services.values()) {
      const expired = svc.checks.some(
        (c) => c.deregisterAfterMs !== undefined && c.criticalSinceMs !== null && nowMs - c.criticalSinceMs >= c.deregisterAfterMs,
      );
      if (expired) gone.push({ id: svc.id, name: svc.name });
    }
    for (const g of gone) this.deregister(g.id);
    return gone;
  }

  service(id: string): ServiceState | undefined {
    return this.services.get(id);
  }

  all(): ServiceState[] {
    return [...this.services.values()];
  }

  instancesOf(name: string): ServiceState[] {
    return this.all()
      .filter((s) => s.name === name)
      .sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  /** Aggregate status, Consul's way: any critical → critical, else any warning → warning. */
  static aggregate(checks: readonly CheckState[]): CheckStatus {
    if (checks.some((c) => c.status === 'critical')) return 'critical';
    if (checks.some((c) => c.status === 'warning')) return 'warning';
    return 'passing';
  }

  /** `GET /v1/catalog/services`: name → union of tags. */
  serviceNames(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const s of this.services.values()) {
      const tags = (out[s.name] ??= []);
      for (const t of s.tags) if (!tags.includes(t)) tags.push(t);
    }
    return out;
  }

  snapshot(): Snapshot {
    return { index: this.idx, services: this.all().map((s) => structuredClone(s)) };
  }

  /**
   * Restores a persisted snapshot. Statuses are kept (callers re-run checks at once); indexes
   * continue above the snapshot's so blocking clients see a change.
   */
  restore(snap: Snapshot, nowMs: number): void {
    this.idx = Math.max(this.idx, snap.index) + 1;
    for (const s of snap.services) {
      const state: ServiceState = structuredClone(s);
      for (const c of state.checks) {
        if (c.type === 'ttl' && c.ttlMs !== undefined) c.ttlDeadlineMs = nowMs + c.ttlMs;
        if (c.status === 'critical' && c.criticalSinceMs === null) c.criticalSinceMs = nowMs;
      }
      this.services.set(state.id, state);
      for (const c of state.checks) this.checks.set(c.checkId, { serviceId: state.id, check: c });
      this.nameIndex.set(state.name, this.idx);
    }
  }
}
