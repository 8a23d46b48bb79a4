/**
 * The parts of undici Concord's processes use — a connection (`Client`), a pool, an agent, the
 * `request` API and the error classes — loaded on their own. `import 'undici'` loads the whole
 * library (fetch, WebSocket, caches, mocks, interceptors, EventSource): ~9 MiB more RSS in every
 * process for code nothing runs (measured: import + GC, 52 vs 61 MiB). Types come from undici's
 * own declarations; the type-only import below loads nothing.
 *
 * Every process-side HTTP client goes through this module; tools (bench, CLI) may import undici
 * whole.
 */
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

const load = createRequire(import.meta.url);

export const Client = load('undici/lib/dispatcher/client.js') as typeof Undici.Client;
export const Pool = load('undici/lib/dispatcher/pool.js') as typeof Undici.Pool;
export const Agent = load('undici/lib/dispatcher/agent.js') as typeof Undici.Agent;
export const undiciErrors = load('undici/lib/core/errors.js') as typeof Undici.errors;

export type Client = Undici.Client;
export type Pool = Undici.Pool;
export type Agent = Undici.Agent;
export type ResponseData = Undici.Dispatcher.ResponseData;

const dispatchRequest = load('undici/lib/api/api-request.js') as (this: Undici.Dispatcher, opts: Undici.Dispatcher.RequestOptions) => Promise<ResponseData>;

export type RequestOptions = Omit<Undici.Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & {
  method?: Undici.Dispatcher.HttpMethod;
  /** Required: there is no global dispatcher here (each caller owns its connections and limits). */
  dispatcher: Undici.Dispatcher;
};

/** undici's `dispatcher.request(options)` (the API undici's index adds to every dispatcher): the path goes out as given. */
export function requestOn(dispatcher: Undici.Dispatcher, opts: Undici.Dispatcher.RequestOptions): Promise<ResponseData> {
  return dispatchRequest.call(dispatcher, opts);
}

/** undici's `request(url, options)`: one request on the caller's dispatcher, the body as a stream to read once. */
export function request(url: string, opts: RequestOptions): Promise<ResponseData> {
  const u = new URL(url);
  const { dispatcher, ...rest } = opts;
  return requestOn(dispatcher, {
    ...rest,
    origin: u.origin,
    path: `${u.pathname}${u.search}`,
    method: opts.method ?? (opts.body ? 'PUT' : 'GET'),
  });
}
