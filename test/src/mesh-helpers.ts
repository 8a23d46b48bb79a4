/**
 * Helpers of the mesh tests: drive the probe app (apps/mesh-probe), apply Istio YAML and wait
 * until given data planes acknowledged it, switch a sample instance's behaviour, count results.
 */
import assert from 'node:assert/strict';
import { type System, http, instanceUrl, pollUntil } from './harness.js';

export interface ProbeResult {
  status: number;
  servedBy: string | null;
  attempts: number;
  durationMs: number;
  startMs: number;
  flags: string;
  error?: string;
  // biome-ignore lint/suspicious/noExplicitAny: bodies are whatever the callee answered
  body?: any;
}

export interface ProbeAnswer {
  configVersion: number | null;
  elapsedMs: number;
  summary: { byStatus: Record<string, number>; byServer: Record<string, number> };
  results: ProbeResult[];
}

export interface ProbeCall {
  service: string;
  path: string;
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  headers?: Record<string, string>;
  body?: unknown;
  count: number;
  concurrency: number;
  timeoutMs?: number;
  includeBody?: boolean;
}

/** Makes `count` mesh calls from the probe instance `probeId` and returns what each did. */
export async function probe(sys: System, probeId: string, call: ProbeCall): Promise<ProbeAnswer> {
  const r = await http<ProbeAnswer>(`${instanceUrl(sys, probeId)}/internal/probe/call`, { method: 'POST', json: call, signal: AbortSignal.timeout(60_000) });
  assert.equal(r.status, 200, `probe call failed: ${r.text.slice(0, 500)}`);
  return r.body;
}

/** Applies a YAML stream (all or nothing) and returns the new configuration version. */
export async function applyYaml(sys: System, yaml: string): Promise<number> {
  const r = await http<{ version: number }>(`${sys.controlUrl}/api/config`, { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: yaml });
  assert.equal(r.status, 200, `the configuration was refused: ${r.text.slice(0, 2000)}`);
  return r.body.version;
}

/** Deletes a resource when it exists (404 is fine). */
export async function deleteResource(sys: System, kind: string, name: string): Promise<void> {
  const r = await http(`${sys.controlUrl}/api/config/${kind}/${name}`, { method: 'DELETE' });
  assert.ok(r.status === 200 || r.status === 404, `delete ${kind}/${name} answered ${r.status}: ${r.text}`);
}

/** Waits until every listed instance's data plane acknowledged at least `version`. */
export async function waitAcked(sys: System, instanceIds: string[], version: number, timeoutMs = 5000): Promise<void> {
  await pollUntil(
    `${instanceIds.join(', ')} to acknowledge configuration version ${version}`,
    async () => {
      const s = await http<{ instances: Array<{ instanceId: string; version: number | null; error?: string }> }>(`${sys.controlUrl}/api/config/status`);
      return instanceIds.every((id) => {
        const i = s.body.instances.find((x) => x.instanceId === id);
        return i && i.version !== null && i.version >= version && !i.error;
      });
    },
    timeoutMs,
  );
}

/** Applies YAML and waits until the given data planes run it. */
export async function applyAndWait(sys: System, yaml: string, instanceIds: string[]): Promise<number> {
  const v = await applyYaml(sys, yaml);
  await waitAcked(sys, instanceIds, v);
  return v;
}

export type SampleMode = 'ok' | 'always-503' | 'flaky';

/** Switches one sample instance's behaviour (and resets its counters), on its own address. */
export async function setMode(sys: System, instanceId: string, mode: SampleMode): Promise<void> {
  const r = await http(`${instanceUrl(sys, instanceId)}/internal/sample/mode`, { method: 'POST', json: { mode } });
  assert.equal(r.status, 200, r.text);
}

/** Requests that reached a sample instance under /api/sample/ since its mode was last set. */
export async function servedSince(sys: System, instanceId: string): Promise<number> {
  const r = await http<{ served: number }>(`${instanceUrl(sys, instanceId)}/internal/sample/mode`);
  return r.body.served;
}

/** The ids of the endpoints the probe's mesh client has ejected right now, per destination. */
export async function ejected(sys: System, probeId: string): Promise<Record<string, string[]>> {
  const r = await http<{ clusters: Array<{ destination: string; ejected: string[] }> }>(`${instanceUrl(sys, probeId)}/internal/probe/state`);
  return Object.fromEntries(r.body.clusters.map((c) => [c.destination, c.ejected]));
}

/** Share of results for which `pred` holds. */
export function share(results: readonly ProbeResult[], pred: (r: ProbeResult) => boolean): number {
  return results.filter(pred).length / results.length;
}

/** The instance id in `x-served-by` (`sample@v1#sample-1` → `sample-1`). */
export function instanceOf(r: ProbeResult): string | null {
  return r.servedBy ? (r.servedBy.split('#')[1] ?? null) : null;
}

/** The version in `x-served-by` (`sample@v1#sample-1` → `v1`). */
export function versionOf(r: ProbeResult): string | null {
  return r.servedBy ? (r.servedBy.split('@')[1]?.split('#')[0] ?? null) : null;
}

export function assertWithin(actual: number, expected: number, tolerance: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${(actual * 100).toFixed(2)} % is not within ±${tolerance * 100} % of ${expected * 100} %`);
}
