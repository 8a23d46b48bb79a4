/**
 * Header manipulation from a VirtualService (`headers.request` / `headers.response`, at route and
 * at destination level). Pure: returns a new map, never mutates its input.
 *
 * ```ts
 * applyHeaderOperations(headers, ops)                   // → HeaderMap (lower-case names)
 * applyHeaderLayers(headers, [destinationOps, routeOps]) // several levels, in Envoy's order
 * ```
 *
 * - Names are case-insensitive; the result has lower-case names, and input names differing only
 *   in case are merged first.
 * - Order inside one HeaderOperations: `remove`, then `set`, then `add`. Envoy removes before it
 *   adds ("remove-before-add", HeaderParser), and Istio emits `set` entries before `add` entries.
 * - `set` replaces any existing value. `add` appends: "will create a comma-separated list of
 *   values" (Istio), i.e. `old, new`; except `set-cookie`, which cannot be folded (RFC 9110
 *   §5.3), and becomes one more value in an array.
 * - Levels: Envoy applies "weighted cluster level headers, route level headers, virtual host
 *   level headers and finally global level headers" (configuration/http/http_conn_man/headers
 *   .rst, custom request/response headers), so pass the destination's operations before the
 *   route's; a route-level `set` then wins over a destination-level one.
 * - Never throws: operations on pseudo-headers (`:path`…) and `host` are ignored ("Neither
 *   :-prefixed pseudo-headers nor the Host: header may be modified via this mechanism", Envoy),
 *   and so are names that are not HTTP tokens and values containing CR, LF or NUL (they could
 *   not be sent, or would split the header block).
 */
import type { HeaderValues } from './request.js';
import type { HeaderOperations } from './types.js';

export type HeaderMap = Record<string, string | string[]>;

const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
const BAD_VALUE = /[\r\n\0]/;

function writable(lowerName: string): boolean {
  return lowerName !== 'host' && lowerName !== '__proto__' && TOKEN.test(lowerName);
}

/** Lower-cases names, merging values of names that differ only in case. */
export function normalizeHeaders(headers: HeaderValues): HeaderMap {
  const out: HeaderMap = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (value === undefined || lower === '__proto__') continue;
    const values = typeof value === 'string' ? [value] : [...value];
    if (values.length === 0) continue;
    const existing = out[lower];
    if (existing === undefined) out[lower] = typeof value === 'string' ? value : values;
    else out[lower] = lower === 'set-cookie' ? [...toArray(existing), ...values] : [...toArray(existing), ...values].join(', ');
  }
  return out;
}

function toArray(v: string | string[]): string[] {
  return typeof v === 'string' ? [v] : v;
}

export function applyHeaderOperations(headers: HeaderValues, ops: HeaderOperations | undefined): HeaderMap {
  const out = normalizeHeaders(headers);
  if (!ops) return out;
  for (const name of ops.remove ?? []) {
    const lower = name.toLowerCase();
    if (writable(lower)) delete out[lower];
  }
  for (const [name, value] of Object.entries(ops.set ?? {})) {
    const lower = name.toLowerCase();
    if (writable(lower) && !BAD_VALUE.test(value)) out[lower] = value;
  }
  for (const [name, value] of Object.entries(ops.add ?? {})) {
    const lower = name.toLowerCase();
    if (!writable(lower) || BAD_VALUE.test(value)) continue;
    const existing = out[lower];
    if (existing === undefined) out[lower] = value;
    else if (lower === 'set-cookie') out[lower] = [...toArray(existing), value];
    else out[lower] = `${toArray(existing).join(', ')}, ${value}`;
  }
  return out;
}

/** Applies each level in turn: pass the destination's operations first, then the route's. */
export function applyHeaderLayers(headers: HeaderValues, layers: ReadonlyArray<HeaderOperations | undefined>): HeaderMap {
  let out = normalizeHeaders(headers);
  for (const ops of layers) out = applyHeaderOperations(out, ops);
  return out;
}
