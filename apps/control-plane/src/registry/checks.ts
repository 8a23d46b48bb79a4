/**
 * Runs HTTP checks at their interval and timeout: 2xx → passing, 429 → warning, anything else
 * (including an unreachable target or a timeout) → critical. Never throws.
 */
import { Agent, request } from '@concord/platform';
import type { CheckState, CheckStatus } from './catalog.js';

/**
 * `tolerable`: the target did not answer in time — a busy process, not a dead one. Such failures
 * count towards the check's FailuresBeforeCritical; a refused connection or a non-2xx answer is
 * critical at once.
 */
export type CheckResult = { status: CheckStatus; output: string; tolerable?: boolean };

const OUTPUT_MAX_BYTES = 4096;

export function statusForCode(code: number): CheckStatus {
  if (code >= 200 && code < 300) return 'passing';
  if (code === 429) return 'warning';
  return 'critical';
}

export class HttpCheckRunner {
  private readonly timers = new Map<string, { timer: NodeJS.Timeout; key: string }>();
  private readonly agent = new Agent({ connections: 2, keepAliveTimeout: 30_000, connect: { timeout: 2000 } });
  /** For https checks: mutual TLS with the control plane's own workload certificate. */
  private tlsAgent: Agent | null = null;
  private closed = false;

  constructor(private readonly onResult: (checkId: string, result: CheckResult) => void) {}

  /** Installs (or rotates) the client certificate used for https checks. */
  setTls(material: { keyPem: string; certPem: string; caPem: string }): void {
    const old = this.tlsAgent;
    this.tlsAgent = new Agent({
      connections: 2,
      keepAliveTimeout: 30_000,
      connect: { timeout: 2000, key: material.keyPem, cert: material.certPem, ca: material.caPem, checkServerIdentity: () => undefined },
    });
    if (old) void old.close().catch(() => {});
  }

  /** Starts timers for new checks and stops those of checks no longer present. */
  sync(checks: readonly CheckState[]): void {
    if (this.closed) return;
    const live = new Set<string>();
    for (const c of checks) {
      if (c.type !== 'http' || !c.http || !c.intervalMs) continue;
      const key = `${c.http}|${c.intervalMs}|${c.timeoutMs}|${c.definition.Method ?? 'GET'}`;
      live.add(c.checkId);
      const existing = this.timers.get(c.checkId);
      if (existing && existing.key === key) continue;
      if (existing) clearTimeout(existing.timer);
      this.schedule(c, key, 0);
    }
    for (const [id, t] of this.timers) {
      if (!live.has(id)) {
        clearTimeout(t.timer);
        this.timers.delete(id);
      }
    }
  }

  /** Runs a check at once (after a control-plane restart, for example). */
  private schedule(c: CheckState, key: string, delayMs: number): void {
    const timer = setTimeout(async () => {
      const https = c.http?.startsWith('https:') ?? false;
      const result = https && !this.tlsAgent ? { status: 'critical' as const, output: 'https check without a client certificate' } : await runHttpCheck(c, https ? (this.tlsAgent as Agent) : this.agent);
      const cur = this.timers.get(c.checkId);
      if (this.closed || !cur || cur.key !== key) return;
      this.onResult(c.checkId, result);
      if (this.timers.get(c.checkId)?.key === key) this.schedule(c, key, c.intervalMs ?? 1000);
    }, delayMs);
    timer.unref();
    this.timers.set(c.checkId, { timer, key });
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t.timer);
    this.timers.clear();
    void this.agent.close().catch(() => {});
    void this.tlsAgent?.close().catch(() => {});
  }
}

export async function runHttpCheck(c: CheckState, dispatcher: Agent): Promise<CheckResult> {
  const timeoutMs = c.timeoutMs ?? 10_000;
  const headers: Record<string, string> = { 'user-agent': 'Concord Health Check', accept: 'text/plain, text/*, */*' };
  if (c.definition.Header) {
    const h = JSON.parse(c.definition.Header) as Record<string, string[]>;
    for (const [k, v] of Object.entries(h)) headers[k.toLowerCase()] = v.join(', ');
  }
  try {
    const res = await request(c.http as string, {
      method: (c.definition.Method ?? 'GET') as 'GET',
      headers,
      dispatcher,
      signal: AbortSignal.timeout(timeoutMs),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    let body = '';
    for await (const chunk of res.body) {
      if (body.length < OUTPUT_MAX_BYTES) body += chunk.toString();
    }
    const status = statusForCode(res.statusCode);
    return { status, output: `HTTP ${c.definition.Method ?? 'GET'} ${c.http}: ${res.statusCode} Output: ${body.slice(0, OUTPUT_MAX_BYTES)}` };
  } catch (err) {
    const e = err as Error & { code?: string };
    const timedOut = e.name === 'TimeoutError' || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT';
    const reason = timedOut ? `timed out after ${timeoutMs}ms` : (e.code ?? e.message);
    return { status: 'critical', output: `HTTP ${c.definition.Method ?? 'GET'} ${c.http}: ${reason}`, tolerable: timedOut };
  }
}
