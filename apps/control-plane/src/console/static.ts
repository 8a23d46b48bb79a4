/**
 * Serves the built console (`console/dist`): `/` and the single-page app's own paths answer
 * index.html (never cached, so a rebuild shows at once), hashed `/assets/*` are cached for a
 * year. Paths that belong to the APIs (`/api/`, `/v1/`, `/health/`, `/metrics`, …) are never
 * answered here, so an unknown API path stays a problem+json 404. When the console is not
 * built, its paths answer a 503 page that says how to build it.
 *
 * Safe by construction: the decoded path is resolved inside the root (symlinks included), dot
 * segments and NUL bytes are refused, only regular files up to `maxFileBytes` are read.
 */
import { realpathSync } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** Where the console is built, from this file in apps/control-plane/dist/src/console/. */
export const CONSOLE_DIST_DIR = fileURLToPath(new URL('../../../../../console/dist/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};

/** Paths the APIs own: never the console's. */
const RESERVED = /^\/(api|v1|health|metrics|debug|\.well-known)(\/|$)/;

const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

export interface StaticOptions {
  root?: string;
  maxFileBytes?: number;
}

export type Resolved = { kind: 'file'; path: string } | { kind: 'reject' } | { kind: 'spa' };

/**
 * Maps a request path to a file under `root` (pure apart from the realpath of `root`).
 * `reject`: traversal, NUL, or an API path. `spa`: a client-side route (no file extension).
 */
export function resolveStaticPath(root: string, urlPath: string): Resolved {
  if (RESERVED.test(urlPath)) return { kind: 'reject' };
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return { kind: 'reject' };
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return { kind: 'reject' };
  const segments = decoded.split('/');
  if (segments.some((s) => s === '..' || s === '.')) return { kind: 'reject' };
  if (decoded === '/' || decoded === '') return { kind: 'spa' };
  const full = resolve(root, `.${decoded}`);
  if (full !== root && !full.startsWith(root.endsWith(sep) ? root : root + sep)) return { kind: 'reject' };
  const last = segments[segments.length - 1] ?? '';
  if (extname(last) === '') return { kind: 'spa' };
  return { kind: 'file', path: full };
}

function notBuiltPage(root: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Concord console not built</title>
<style>body{font:15px/1.5 system-ui,sans-serif;margin:4rem auto;max-width:40rem;color:#1f2937}code{background:#f3f4f6;padding:.1rem .3rem;border-radius:4px}</style></head>
<body><h1>The console is not built</h1><p>The control plane serves the console from <code>${root.replace(/[<&>]/g, '')}</code>, which has no <code>index.html</code>.</p>
<p>Build it with <code>npm run build</code> (or <code>npm run build -w console</code>) and reload this page. The APIs under <code>/api</code> and <code>/v1</code> work meanwhile.</p></body></html>`;
}

export function consoleStatic(app: FastifyInstance, opts: StaticOptions = {}): void {
  const root = opts.root ?? CONSOLE_DIST_DIR;
  const maxFileBytes = opts.maxFileBytes ?? 16 * 1_048_576;
  let realRoot: string | null = null;
  const rootPath = (): string => {
    if (realRoot) return realRoot;
    try {
      realRoot = realpathSync(root);
    } catch {
      return resolve(root);
    }
    return realRoot;
  };

  /** Reads a regular file inside the root, or null. */
  async function load(path: string): Promise<{ body: Buffer; mtimeMs: number } | null> {
    try {
      const real = await realpath(path);
      const r = rootPath();
      if (!real.startsWith(r + sep)) return null; // a symlink out of the root
      const st = await stat(real);
      if (!st.isFile() || st.size > maxFileBytes) return null;
      return { body: await readFile(real), mtimeMs: st.mtimeMs };
    } catch {
      return null;
    }
  }

  async function send(req: FastifyRequest, reply: FastifyReply, path: string, immutable: boolean): Promise<boolean> {
    const file = await load(path);
    if (!file) return false;
    const etag = `W/"${file.body.length.toString(16)}-${Math.floor(file.mtimeMs).toString(16)}"`;
    reply
      .header('content-type', CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream')
      .header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
      .header('etag', etag)
      .header('x-content-type-options', 'nosniff');
    if (path.endsWith('.html')) reply.header('content-security-policy', CSP).header('x-frame-options', 'DENY').header('referrer-policy', 'no-referrer');
    if (req.headers['if-none-match'] === etag) {
      reply.code(304).send();
      return true;
    }
    reply.code(200).send(req.method === 'HEAD' ? undefined : file.body);
    return true;
  }

  async function index(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const r = rootPath();
    if (await send(req, reply, join(r, 'index.html'), false)) return;
    reply.code(503).header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store').header('retry-after', '10').send(notBuiltPage(root));
  }

  /** Serves `urlPath` if it is the console's; false when it is not (the caller answers 404). */
  async function serve(req: FastifyRequest, reply: FastifyReply, urlPath: string): Promise<boolean> {
    const r = resolveStaticPath(rootPath(), urlPath);
    if (r.kind === 'reject') return false;
    if (r.kind === 'spa') {
      // Only browsers navigating want the app; an API client asking JSON gets the 404.
      const accept = String(req.headers.accept ?? '');
      if (urlPath !== '/' && accept !== '' && !accept.includes('text/html') && !accept.includes('*/*')) return false;
      await index(req, reply);
      return true;
    }
    return send(req, reply, r.path, urlPath.startsWith('/assets/'));
  }

  app.get('/', async (req, reply) => {
    await index(req, reply);
    return reply;
  });
  app.get('/assets/*', async (req, reply) => {
    const urlPath = (req.raw.url ?? '/').split('?')[0] as string;
    if (!(await serve(req, reply, urlPath))) {
      reply.code(404).header('content-type', 'text/plain; charset=utf-8').send('not found');
    }
    return reply;
  });
  // Client-side routes (and top-level files such as favicon.svg): answered where Fastify
  // found no route, before its 404 handler runs.
  app.addHook('onRequest', async (req, reply) => {
    if (!req.is404 || (req.method !== 'GET' && req.method !== 'HEAD')) return;
    const urlPath = (req.raw.url ?? '/').split('?')[0] as string;
    if (await serve(req, reply, urlPath)) return reply;
    return undefined;
  });
}
