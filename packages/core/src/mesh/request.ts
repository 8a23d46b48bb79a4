/**
 * The outbound HTTP request as the mesh core sees it, and the small parsers that route matching,
 * consistent hashing and authorization share.
 *
 * ```ts
 * interface MeshRequest { method; path (with query); headers (lower-case names) }
 * pathOf('/a/b?x=1')            // '/a/b'
 * queryOf('/a/b?x=1&y')         // Map { x → '1', y → '' }
 * headerValue(headers, 'x-id')  // string | undefined (repeated headers joined with ',')
 * ```
 */

export type HeaderValues = Readonly<Record<string, string | readonly string[] | undefined>>;

export interface MeshRequest {
  method: string;
  /** Path with the query string, as on the request line: `/reviews/1?x=y`. */
  path: string;
  /** Lower-case names. */
  headers: HeaderValues;
}

/** At most this many query parameters are parsed from one request. */
export const MAX_QUERY_PARAMS = 128;

/** The path without its query string. */
export function pathOf(path: string): string {
  const q = path.indexOf('?');
  return q < 0 ? path : path.slice(0, q);
}

/**
 * Query parameters, percent-decoded (an undecodable part is kept as sent). The first occurrence
 * of a name wins; `?key` has the value "". At most MAX_QUERY_PARAMS are read.
 */
export function queryOf(path: string): Map<string, string> {
  const out = new Map<string, string>();
  const q = path.indexOf('?');
  if (q < 0 || q === path.length - 1) return out;
  let n = 0;
  for (const part of path.slice(q + 1).split('&')) {
    if (part.length === 0) continue;
    if (++n > MAX_QUERY_PARAMS) break;
    const eq = part.indexOf('=');
    const key = decode(eq < 0 ? part : part.slice(0, eq));
    if (!out.has(key)) out.set(key, eq < 0 ? '' : decode(part.slice(eq + 1)));
  }
  return out;
}

/** A header's value; a header sent several times reads as its values joined with ",". */
export function headerValue(headers: HeaderValues, lowerName: string): string | undefined {
  const v = headers[lowerName];
  if (v === undefined) return undefined;
  return typeof v === 'string' ? v : v.join(',');
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
