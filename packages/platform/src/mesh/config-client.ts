/**
 * The data plane's side of the configuration stream: long-polls the control plane for a newer
 * mesh configuration version, hands it to listeners, and acknowledges it (or reports why it
 * could not be used). Cut off from the control plane, it keeps the last good configuration.
 */
import { backoffDelayMs, mesh } from '@concord/core';
import { Agent, request } from '../http-client/undici.js';
import type { Logger } from '../service-kit/logger.js';

const WAIT_S = 30;

export class MeshConfigClient {
  config: mesh.MeshConfig = mesh.emptyMeshConfig(0);
  private readonly listeners = new Set<(c: mesh.MeshConfig) => void>();
  private readonly abort = new AbortController();
  private readonly agent = new Agent({ connections: 2, keepAliveTimeout: 60_000 });
  private first: Promise<void>;
  private resolveFirst!: () => void;

  /** `report`: what the data plane says of itself with each acknowledgement (its tracing). */
  constructor(private readonly opts: { controlUrl: string; instanceId: string; log: Logger; report?: () => { tracing?: mesh.TracingReport } }) {
    this.first = new Promise((r) => {
      this.resolveFirst = r;
    });
  }

  /** Registers a listener; it throws to refuse a configuration it cannot use (the ack says why). */
  onChange(fn: (c: mesh.MeshConfig) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  start(): void {
    void this.loop();
  }

  /** Resolves once the first answer arrived, or after timeoutMs. */
  async ready(timeoutMs = 3000): Promise<void> {
    await Promise.race([this.first, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (!this.abort.signal.aborted) {
      try {
        const res = await request(`${this.opts.controlUrl}/api/config/watch?version=${this.config.version}&wait=${WAIT_S}s`, {
          dispatcher: this.agent,
          signal: this.abort.signal,
          headersTimeout: (WAIT_S + 10) * 1000,
          bodyTimeout: (WAIT_S + 10) * 1000,
        });
        if (res.statusCode !== 200) {
          await res.body.dump();
          throw new Error(`config watch answered ${res.statusCode}`);
        }
        const body = (await res.body.json()) as { version: number; config: mesh.MeshConfig };
        failures = 0;
        // A restarted control plane with a lower version is still the truth.
        if (body.version !== this.config.version) await this.apply(body.config);
        this.resolveFirst();
      } catch (err) {
        if (this.abort.signal.aborted) return;
        failures++;
        if (failures === 1 || failures % 20 === 0) this.opts.log.warn({ err: String(err) }, 'mesh config watch failed; keeping the last good configuration');
        this.resolveFirst();
        await new Promise((r) => setTimeout(r, backoffDelayMs({ baseMs: 100, capMs: 2000, equalJitter: true }, failures, Math.random)).unref());
      }
    }
  }

  private async apply(next: mesh.MeshConfig): Promise<void> {
    let error: string | undefined;
    const previous = this.config;
    try {
      this.config = next;
      for (const fn of this.listeners) fn(next);
    } catch (err) {
      this.config = previous;
      for (const fn of this.listeners) fn(previous);
      error = err instanceof Error ? err.message : String(err);
      this.opts.log.error({ version: next.version, error }, 'refused a mesh configuration; keeping the previous one');
    }
    this.opts.log.info({ version: this.config.version }, 'mesh configuration applied');
    try {
      const res = await request(`${this.opts.controlUrl}/api/config/ack`, {
        method: 'PUT',
        dispatcher: this.agent,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ instanceId: this.opts.instanceId, version: next.version, ...(error ? { error } : {}), ...this.opts.report?.() }),
        signal: AbortSignal.timeout(3000),
      });
      await res.body.dump();
    } catch {
      /* the next change acks again */
    }
  }

  close(): void {
    this.abort.abort();
    void this.agent.close().catch(() => {});
  }
}
