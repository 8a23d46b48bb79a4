/**
 * One HTTP exchange on one undici dispatcher, with the least machinery: the handler collects the
 * body itself (no stream, no AbortSignal inside undici) and a single timer bounds the whole try.
 * The mesh's calls go through it, and so does span export (otlp-proto.ts), which used node:http
 * before: every process-side client is undici's (see undici.ts), and a code path the mesh runs
 * all the time is one the JIT has optimized when an export runs it a few times a second.
 */
import type { Dispatcher } from 'undici';

/** A response body larger than this fails the exchange (a bound on what one call may buffer). */
export const MAX_RESPONSE_BYTES = 4 * 1_048_576;

export interface DispatchResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  raw: Buffer;
  /** The server said `Connection: close`: the connection cannot carry another request. */
  closing: boolean;
}

/** The try's budget ran out (our own timer, not undici's: its long timers are coarse). */
export class TryTimeoutError extends Error {
  override name = 'TimeoutError';
}

/**
 * One request on one undici client, the body collected by the handler itself (no stream, no
 * AbortSignal): a single timer bounds the whole try and aborts the request when it fires.
 */
export function dispatch(
  client: Dispatcher,
  req: { path: string; method: string; headers: Record<string, string> | string[]; body: string | Buffer | undefined },
  timeoutMs: number,
  opts: {
    signal?: AbortSignal;
    maxResponseBytes?: number;
    /**
     * A try that ends before undici started writing it (still connecting, or queued) destroys
     * `client` too: right for a one-connection client that is replaced (the mesh's), wrong for a
     * pool that serves later tries (span export passes false; the request is aborted if it starts).
     */
    destroyOnEarlyAbort?: boolean;
  } = {},
): Promise<DispatchResponse> {
  const { signal, maxResponseBytes = MAX_RESPONSE_BYTES, destroyOnEarlyAbort = true } = opts;
  return new Promise((resolve, reject) => {
    let controller: Dispatcher.DispatchController | null = null;
    let status = 0;
    let headers: Record<string, string | string[] | undefined> = {};
    let chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    /** Why the try ended before undici started it: the request is aborted with it if it starts later. */
    let earlyAbort: Error | null = null;
    const settle = (err: Error | null) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      // The status of an answer cut short (0: none came), so a caller can tell a lost answer from none.
      if (err) reject(Object.assign(err, { answeredStatus: status }));
      else
        resolve({
          status,
          headers,
          raw: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size),
          closing: typeof headers.connection === 'string' && headers.connection.toLowerCase() === 'close',
        });
    };
    const abort = (err: Error) => {
      if (controller) controller.abort(err);
      else {
        // Not on the wire yet (still connecting, or queued): fail it, and drop the connection
        // when the client is this try's own.
        earlyAbort = err;
        settle(err);
        if (destroyOnEarlyAbort) void client.destroy(err).catch(() => {});
      }
    };
    const timer = Number.isFinite(timeoutMs) ? setTimeout(() => abort(new TryTimeoutError(`no answer within ${Math.round(timeoutMs)} ms`)), timeoutMs) : null;
    const onAbort = () => abort(signal?.reason instanceof Error ? signal.reason : new Error('aborted by the caller'));
    if (signal) {
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
    }
    const timeouts = timer ? { headersTimeout: 0, bodyTimeout: 0 } : {};
    try {
      client.dispatch(
        { path: req.path, method: req.method as Dispatcher.HttpMethod, headers: req.headers, body: req.body ?? null, ...timeouts },
        {
          onRequestStart(c) {
            controller = c;
            if (earlyAbort) c.abort(earlyAbort);
          },
          onResponseStart(_c, statusCode, h) {
            if (statusCode < 200) return;
            status = statusCode;
            headers = h as Record<string, string | string[] | undefined>;
            chunks = [];
            size = 0;
          },
          onResponseData(c, chunk) {
            size += chunk.length;
            if (size > maxResponseBytes) c.abort(new Error(`response larger than ${maxResponseBytes} bytes`));
            else chunks.push(chunk);
          },
          onResponseEnd() {
            settle(null);
          },
          onResponseError(_c, err) {
            settle(err);
          },
        },
      );
    } catch (err) {
      // A request undici refuses outright (a header value it cannot send, a closed client).
      settle(err as Error);
    }
  });
}
