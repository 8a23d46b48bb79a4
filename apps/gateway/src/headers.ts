/**
 * Which headers cross the gateway, in each direction, and the W3C trace context it carries.
 * Allow-lists: anything not named here (internal x-concord-* headers, cookies, hop-by-hop
 * fields, and fields the Connection header names as hop-by-hop) never crosses.
 */
import { randomBytes } from 'node:crypto';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'trailers', 'transfer-encoding', 'upgrade', 'host', 'content-length']);

/** Request headers a client may send upstream. */
const REQUEST_ALLOWED = new Set([
  'accept',
  'accept-language',
  'authorization',
  'content-type',
  'idempotency-key',
  'if-match',
  'if-none-match',
  'prefer',
  'user-agent',
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
  'content-encoding',
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
  'vary',
]);

/** Field names listed in a Connection header are hop-by-hop for that message (RFC 9110 §7.6.1). */
function connectionListed(connection: string | string[] | undefined): Set<string> | null {
  if (connection === undefined) return null;
  const text = Array.isArray(connection) ? connection.join(',') : connection;
  if (text === 'keep-alive' || text === 'close') return null;
  const names = text
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  return names.length > 0 ? new Set(names) : null;
}

export function upstreamRequestHeaders(incoming: Record<string, string | string[] | undefined>, requestId: string, traceparent: string): Record<string, string> {
  const out: Record<string, string> = {};
  const listed = connectionListed(incoming.connection);
  for (const k in incoming) {
    const v = incoming[k];
    // A repeated header (an array) is ambiguous for every field allowed here: dropped.
    if (typeof v !== 'string' || !REQUEST_ALLOWED.has(k) || listed?.has(k)) continue;
    out[k] = v;
  }
  out['x-request-id'] = requestId;
  out.traceparent = traceparent;
  return out;
}

export function clientResponseHeaders(upstream: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const listed = connectionListed(upstream.connection);
  for (const k in upstream) {
    const v = upstream[k];
    if (v === undefined || HOP_BY_HOP.has(k) || !RESPONSE_ALLOWED.has(k) || listed?.has(k)) continue;
    out[k] = v;
  }
  return out;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** Random ids come from a pooled buffer: one randomBytes call per 512 spans. */
let pool = Buffer.alloc(0);
let poolAt = 0;
function randomHex(bytes: number): string {
  if (poolAt + bytes > pool.length) {
    pool = randomBytes(4096);
    poolAt = 0;
  }
  const s = pool.toString('hex', poolAt, poolAt + bytes);
  poolAt += bytes;
  return s;
}

/**
 * The traceparent the gateway sends upstream (W3C Trace Context): the client's trace continues
 * with the gateway's span as parent; a missing or invalid one starts a new sampled trace.
 */
export function nextTraceparent(incoming: string | string[] | undefined): string {
  if (typeof incoming === 'string') {
    const m = TRACEPARENT.exec(incoming.trim());
    // Version ff is invalid; a future version is read as version 00 (its first four fields).
    if (m && m[1] !== 'ff' && (m[1] !== '00' || m[5] === undefined) && m[2] !== ZERO_TRACE && m[3] !== ZERO_SPAN) {
      return `00-${m[2]}-${randomHex(8)}-${m[4]}`;
    }
  }
  return `00-${randomHex(16)}-${randomHex(8)}-01`;
}
