/**
 * An absolute http(s) URL that paths are appended to (a gateway's, a control plane's, a
 * collector's): the text given, without trailing slashes, or null when it is not one.
 */
export function httpBaseUrl(raw: string): string | null {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return null;
  }
  return u.protocol === 'http:' || u.protocol === 'https:' ? raw.replace(/\/+$/, '') : null;
}
