/**
 * `concord audit` (npm run audit): reads only the admin API through the gateway, waits for the
 * system to go quiet, and prints PASS/FAIL per invariant.
 */
import { type CheckResult, type InventoryRow, type LoadRecord, type Snapshot, checkRecord, checkSnapshot } from './checks.js';

export interface AuditOptions {
  gatewayUrl: string;
  token: string;
  /** How long to wait for running sagas to finish before checking. */
  quietTimeoutMs?: number;
  record?: LoadRecord;
  onProgress?: (line: string) => void;
}

/** The longest a Retry-After is honoured, and the most time spent waiting on one request. */
const MAX_RETRY_AFTER_MS = 10_000;
const RETRY_BUDGET_MS = 120_000;

/**
 * How long to wait before asking again after an answer: the gateway's rate limit (429) and an
 * overloaded service (503) say when in Retry-After; anything else is final (null). The audit
 * reads every acknowledged order through the admin API, a thousand per request: after a long
 * run that is more requests than the admin's rate limit allows at once.
 */
export function retryAfterMs(status: number, retryAfter: string | null): number | null {
  if (status !== 429 && status !== 503) return null;
  const s = Number(retryAfter);
  return retryAfter !== null && Number.isFinite(s) && s >= 0 ? Math.min(MAX_RETRY_AFTER_MS, Math.max(100, s * 1000)) : 1000;
}

/** fetch, asking again while the answer says to retry later (bounded in total wait). */
export async function politeFetch(url: string, init: RequestInit, timeoutMs: number): Promise<Response> {
  const giveUpAt = Date.now() + RETRY_BUDGET_MS;
  for (;;) {
    const r = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    const waitMs = retryAfterMs(r.status, r.headers.get('retry-after'));
    if (waitMs === null || Date.now() + waitMs > giveUpAt) return r;
    await r.body?.cancel();
    await new Promise((resolve) => setTimeout(resolve, waitMs));
  }
}

async function getJson<T>(url: string, token: string): Promise<T> {
  const r = await politeFetch(url, { headers: { authorization: `Bearer ${token}` } }, 15_000);
  const text = await r.text();
  if (!r.ok) throw new Error(`GET ${url} answered ${r.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

export async function adminToken(gatewayUrl: string, email: string, password: string): Promise<string> {
  const r = await fetch(`${gatewayUrl}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }), signal: AbortSignal.timeout(10_000) });
  if (r.status !== 200) throw new Error(`admin login answered ${r.status}: ${(await r.text()).slice(0, 200)}`);
  return ((await r.json()) as { token: string }).token;
}

export async function snapshot(o: AuditOptions): Promise<Snapshot> {
  const g = o.gatewayUrl;
  const deadline = Date.now() + (o.quietTimeoutMs ?? 60_000);
  let orders: Snapshot['orders'];
  let quiet = false;
  for (;;) {
    orders = await getJson<Snapshot['orders']>(`${g}/api/admin/orders/summary`, o.token);
    const running = (orders.sagas.RUNNING ?? 0) + (orders.sagas.COMPENSATING ?? 0);
    if (running === 0 && (orders.byStatus.PENDING ?? 0) === 0) {
      quiet = true;
      break;
    }
    if (Date.now() > deadline) break;
    o.onProgress?.(`waiting for quiet: ${running} sagas running, ${orders.byStatus.PENDING ?? 0} orders pending`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const inventory: InventoryRow[] = [];
  let cursor: string | null = null;
  do {
    const page: { items: InventoryRow[]; nextCursor: string | null } = await getJson(`${g}/api/admin/inventory?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, o.token);
    inventory.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  const [payments, points] = await Promise.all([
    getJson<Snapshot['payments']>(`${g}/api/admin/payments/summary`, o.token),
    getJson<Snapshot['points']>(`${g}/api/admin/points/summary`, o.token),
  ]);
  // Orders again, after the others: nothing may move while quiet.
  orders = await getJson<Snapshot['orders']>(`${g}/api/admin/orders/summary`, o.token);
  return { inventory, payments, orders, points, quiet };
}

export async function runAudit(o: AuditOptions): Promise<{ ok: boolean; results: CheckResult[] }> {
  const snap = await snapshot(o);
  const results = checkSnapshot(snap);
  if (o.record) {
    const ids = [...new Set([...o.record.acknowledged, ...o.record.seenConfirmed])];
    const statusOf = new Map<string, string | null>(ids.map((id) => [id, null]));
    const BATCH = 1000;
    for (let i = 0; i < ids.length; i += BATCH) {
      const r = await politeFetch(
        `${o.gatewayUrl}/api/admin/orders/lookup`,
        { method: 'POST', headers: { authorization: `Bearer ${o.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ ids: ids.slice(i, i + BATCH) }) },
        30_000,
      );
      if (r.status !== 200) throw new Error(`order lookup answered ${r.status}: ${(await r.text()).slice(0, 200)}`);
      for (const it of ((await r.json()) as { items: Array<{ id: string; status: string }> }).items) statusOf.set(it.id, it.status);
    }
    results.push(...checkRecord(o.record, statusOf));
  }
  return { ok: results.every((r) => r.ok), results };
}

export function renderAudit(results: CheckResult[], color: boolean): string {
  const paint = (ok: boolean, s: string) => (color ? `\x1b[${ok ? 32 : 31}m${s}\x1b[0m` : s);
  const lines = results.map((r) => `${paint(r.ok, r.ok ? 'PASS' : 'FAIL')}  ${r.name} — ${r.detail}`);
  const failed = results.filter((r) => !r.ok).length;
  lines.push('', failed === 0 ? paint(true, `audit passed: ${results.length} invariants hold`) : paint(false, `audit FAILED: ${failed} of ${results.length} invariants broken`));
  return lines.join('\n');
}
