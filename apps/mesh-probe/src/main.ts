/**
 * A test-only service that drives the mesh from inside a real process: it makes calls through
 * its own mesh client (the real configuration stream, registry watch, identity and telemetry)
 * and reports what each call did. Its service name comes from CONCORD_PROBE_SERVICE, so one app
 * can play `order`, `points` or `payment` in a test topology (`name: points, app: mesh-probe`):
 * the name is the workload identity, because the supervisor's bootstrap token is per name.
 *
 *   POST /internal/probe/call  {service, path, method?, headers?, body?, count, concurrency, timeoutMs?, includeBody?}
 *     → {results: [{status, servedBy, attempts, durationMs, startMs, flags, error?, body?}], summary}
 *   GET  /internal/probe/state → this data plane's configuration version and clusters (ejections)
 *   GET  /api/probe/whoami     → the caller as this service sees it (a callee for security tests)
 *
 * Never deploy it: `/internal/probe/call` makes any call anyone asks for, with this identity.
 */
import { type MeshClient, UpstreamError, peerPrincipal, runService } from '@concord/platform';
import { Type } from '@sinclair/typebox';

const SERVICE = /^[a-z][a-z0-9-]{0,30}$/;
const name = process.env.CONCORD_PROBE_SERVICE ?? 'probe';
if (!SERVICE.test(name)) {
  process.stderr.write(`mesh-probe: CONCORD_PROBE_SERVICE must be a service name such as "order", got ${JSON.stringify(name)}\n`);
  process.exit(2);
}

const MAX_COUNT = 5000;
const MAX_CONCURRENCY = 256;
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

interface CallBody {
  service: string;
  path: string;
  method?: (typeof METHODS)[number];
  headers?: Record<string, string>;
  body?: unknown;
  count: number;
  concurrency: number;
  timeoutMs?: number;
  /** Return each answer's body too (kept small: for checks of what the callee saw). */
  includeBody?: boolean;
}

export interface ProbeResult {
  /** The HTTP status the caller got; for a call without an answer, what a gateway makes of it (503, or 504 on timeout). */
  status: number;
  /** `x-served-by` of the answer (null when no instance answered). */
  servedBy: string | null;
  attempts: number;
  durationMs: number;
  /** When the call started (epoch ms). */
  startMs: number;
  /** The call's response flags, Envoy's vocabulary (`-`, `DI`, `FI`, `UO`, `UT`, …). */
  flags: string;
  /** The kind of failure when no HTTP answer came back (UpstreamError.kind). */
  error?: string;
  body?: unknown;
}

async function callOnce(mesh: MeshClient, b: CallBody): Promise<ProbeResult> {
  const startMs = Date.now();
  const t0 = performance.now();
  try {
    const r = await mesh.request(b.service, { method: b.method, path: b.path, headers: b.headers, body: b.body, timeoutMs: b.timeoutMs });
    const servedBy = r.headers['x-served-by'];
    return {
      status: r.status,
      servedBy: typeof servedBy === 'string' ? servedBy : null,
      attempts: r.attempts,
      durationMs: performance.now() - t0,
      startMs,
      flags: r.flags,
      ...(b.includeBody ? { body: r.body } : {}),
    };
  } catch (err) {
    const durationMs = performance.now() - t0;
    if (!(err instanceof UpstreamError)) throw err;
    return {
      status: err.kind === 'timeout' ? 504 : 503,
      servedBy: null,
      attempts: err.attempts,
      durationMs,
      startMs,
      flags: err.flags,
      error: err.kind,
    };
  }
}

runService({
  name,
  setup(ctx) {
    const { app } = ctx;
    app.post<{ Body: CallBody }>(
      '/internal/probe/call',
      {
        schema: {
          body: Type.Object(
            {
              service: Type.String({ pattern: SERVICE.source }),
              path: Type.String({ pattern: '^/', maxLength: 2048 }),
              method: Type.Optional(Type.Union(METHODS.map((m) => Type.Literal(m)))),
              headers: Type.Optional(Type.Record(Type.String({ maxLength: 100 }), Type.String({ maxLength: 1000 }))),
              body: Type.Optional(Type.Unknown()),
              count: Type.Integer({ minimum: 1, maximum: MAX_COUNT }),
              concurrency: Type.Integer({ minimum: 1, maximum: MAX_CONCURRENCY }),
              timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 600_000 })),
              includeBody: Type.Optional(Type.Boolean()),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (req) => {
        const b = req.body;
        const results: ProbeResult[] = new Array(b.count);
        let next = 0;
        const worker = async () => {
          while (next < b.count) {
            const i = next++;
            results[i] = await callOnce(ctx.mesh, b);
          }
        };
        const t0 = performance.now();
        await Promise.all(Array.from({ length: Math.min(b.concurrency, b.count) }, worker));
        const byStatus: Record<string, number> = {};
        const byServer: Record<string, number> = {};
        for (const r of results) {
          byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
          const who = r.servedBy ?? r.error ?? 'none';
          byServer[who] = (byServer[who] ?? 0) + 1;
        }
        return { configVersion: ctx.meshConfig?.config.version ?? null, elapsedMs: performance.now() - t0, summary: { byStatus, byServer }, results };
      },
    );
    app.get('/internal/probe/state', async () => ({
      servedBy: ctx.servedBy,
      configVersion: ctx.meshConfig?.config.version ?? null,
      clusters: ctx.mesh.snapshot(),
    }));
    app.get('/api/probe/whoami', async (req) => ({
      servedBy: ctx.servedBy,
      principal: peerPrincipal(req.raw.socket),
      timeoutMs: req.headers['x-concord-timeout-ms'] ?? null,
    }));
  },
});
