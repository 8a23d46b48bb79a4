/** Which headers cross the gateway, in each direction. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'trailers', 'transfer-encoding', 'upgrade', 'host', 'content-length']);

/** Request headers a client may send upstream. Anything internal (x-concord-*) never passes. */
const REQUEST_ALLOWED = new Set([
  'accept',
  'accept-language',
  'authorization',
  'content-type',
  'idempotency-key',
  'prefer',
  'user-agent',
  'traceparent',
  'tracestate',
  'b3',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
  'end-user',
]);

/** Response headers passed back to the client. */
const RESPONSE_ALLOWED = new Set([
  'content-type',
  'location',
  'retry-after',
  'x-served-by',
  'traceparent',
  'tracestate',
  'idempotent-replayed',
  'preference-applied',
  'www-authenticate',
  'allow',
  'cache-control',
  'etag',
]);

export function upstreamRequestHeaders(incoming: Record<string, string | string[] | undefined>, requestId: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(incoming)) {
    if (typeof v !== 'string' || HOP_BY_HOP.has(k) || !REQUEST_ALLOWED.has(k)) continue;
    out[k] = v;
  }
  out['x-request-id'] = requestId;
  return out;
}

export function clientResponseHeaders(upstream: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(upstream)) {
    if (v === undefined || HOP_BY_HOP.has(k) || !RESPONSE_ALLOWED.has(k)) continue;
    out[k] = v;
  }
  return out;
}
