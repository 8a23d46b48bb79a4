/**
 * The mesh client: every call from one Concord process to another goes through it. It finds
 * passing instances through the registry watch, balances over them, keeps pooled keep-alive
 * connections per endpoint, applies a timeout and classifies failures as transient (worth a
 * retry) or not. The service-mesh issue grows it into the full Istio data plane.
 */
import { Agent, type Dispatcher, errors as undiciErrors } from 'undici';
import type { Instance, RegistryClient } from '../registry-client/client.js';
import type { Logger } from '../service-kit/logger.js';

export interface CallOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  headers?: Record<string, string>;
  /** Serialized as JSON, unless `raw` is set (then a Buffer sent as is). */
  body?: unknown;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Return the body as a Buffer and send `body` unchanged (proxying). */
  raw?: boolean;
}

export interface CallResult<T = unknown> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: T;
  instance: Instance;
}

export type UpstreamFailure = 'no-instances' | 'connect' | 'reset' | 'timeout';

/** A call that got no HTTP answer. Always transient: the caller may retry. */
export class UpstreamError extends Error {
  override name = 'UpstreamError';
  readonly transient = true;
  constructor(
    readonly service: string,
    readonly kind: UpstreamFailure,
    message: string,
  ) {
    super(message);
  }
}

const DEFAULT_TIMEOUT_MS = 5000;
const MAX_CONNECT_ATTEMPTS = 3;
const MAX_RESPONSE_BYTES = 4 * 1_048_576;

/** 5xx, 408 and 429 answers are transient; other 4xx are the upstream's final word. */
export function isTransientStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

export class MeshClient {
  private readonly agent: Agent;

  constructor(private readonly opts: { registry: RegistryClient; log: Logger; source: string; connectionsPerEndpoint?: number }) {
    this.agent = new Agent({
      connections: opts.connectionsPerEndpoint ?? 64,
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 60_000,
      connect: { timeout: 2000 },
      pipelining: 1,
    });
  }

  async request<T = unknown>(service: string, call: CallOptions): Promise<CallResult<T>> {
    const watch = this.opts.registry.watch(service);
    if (!watch.loaded) await watch.ready(3000);
    const timeoutMs = call.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const signal = call.signal ? AbortSignal.any([call.signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs);
    const tried = new Set<string>();
    let lastError: UpstreamError | null = null;
    for (let attempt = 0; attempt < MAX_CONNECT_ATTEMPTS; attempt++) {
      const candidates = watch.routable.filter((i) => !tried.has(i.id));
      const instance = candidates.length > 0 ? pickFrom(candidates, watch.pick()) : undefined;
      if (!instance) break;
      tried.add(instance.id);
      try {
        return await this.send<T>(service, instance, call, signal, timeoutMs);
      } catch (err) {
        if (!(err instanceof UpstreamError)) throw err;
        lastError = err;
        // Only a refused connection is certainly unsent; anything else may have been applied.
        if (err.kind !== 'connect') throw err;
      }
    }
    throw lastError ?? new UpstreamError(service, 'no-instances', `no passing instance of ${service}`);
  }

  private async send<T>(service: string, instance: Instance, call: CallOptions, signal: AbortSignal, timeoutMs: number): Promise<CallResult<T>> {
    const headers: Record<string, string> = { ...call.headers, 'x-concord-source': this.opts.source };
    let body: string | Buffer | undefined;
    if (call.raw) body = call.body as Buffer | undefined;
    else if (call.body !== undefined) {
      body = JSON.stringify(call.body);
      headers['content-type'] = 'application/json';
    }
    let res: Dispatcher.ResponseData;
    try {
      res = await this.agent.request({
        origin: instance.origin,
        path: call.path,
        method: call.method ?? (body === undefined ? 'GET' : 'POST'),
        headers,
        body,
        signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
    } catch (err) {
      throw classify(service, instance, err, timeoutMs);
    }
    let buf: Buffer;
    try {
      buf = await readLimited(res.body, MAX_RESPONSE_BYTES);
    } catch (err) {
      throw classify(service, instance, err, timeoutMs);
    }
    if (call.raw) return { status: res.statusCode, headers: res.headers, body: buf as T, instance };
    const text = buf.toString('utf8');
    const ct = String(res.headers['content-type'] ?? '');
    let parsed: unknown = text;
    if (text && ct.includes('json')) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    } else if (!text) parsed = undefined;
    return { status: res.statusCode, headers: res.headers, body: parsed as T, instance };
  }

  async close(): Promise<void> {
    await this.agent.close().catch(() => {});
  }
}

function pickFrom(candidates: Instance[], preferred: Instance | undefined): Instance {
  return preferred && candidates.includes(preferred) ? preferred : (candidates[Math.floor(Math.random() * candidates.length)] as Instance);
}

async function readLimited(body: Dispatcher.ResponseData['body'], maxBytes: number): Promise<Buffer> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      body.destroy();
      throw new Error(`response larger than ${maxBytes} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function classify(service: string, instance: Instance, err: unknown, timeoutMs: number): UpstreamError {
  const e = err as Error & { code?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code ?? '';
  if (code === 'ECONNREFUSED' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'EHOSTUNREACH' || code === 'ENOTFOUND') {
    return new UpstreamError(service, 'connect', `${service} (${instance.id}) refused the connection (${code})`);
  }
  if (e.name === 'TimeoutError' || e.name === 'AbortError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || err instanceof undiciErrors.RequestAbortedError) {
    return new UpstreamError(service, 'timeout', `${service} (${instance.id}) did not answer within ${timeoutMs} ms`);
  }
  return new UpstreamError(service, 'reset', `${service} (${instance.id}) connection failed (${code || e.message})`);
}
