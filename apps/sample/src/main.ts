/**
 * A small service that exercises the service kit and the mesh end to end: registration, health,
 * validation, problem+json, slow requests for graceful-shutdown and timeout tests, and upstream
 * behaviour a test can control per instance (answer a given status, fail every other call, fail
 * everything) for retry, outlier-detection and fault tests.
 */
import { enumVar, intVar, peerPrincipal, problem, runService, sendProblem } from '@concord/platform';
import { Type } from '@sinclair/typebox';

/** How this instance answers `/api/sample/*`: normally, 503 to everything, or 503 to every other call. */
const MODES = ['ok', 'always-503', 'flaky'] as const;
type Mode = (typeof MODES)[number];

runService({
  name: 'sample',
  config: {
    maxSlowMs: intVar('SAMPLE_MAX_SLOW_MS', 30_000, 0, 600_000),
    failMode: enumVar('SAMPLE_FAIL_MODE', 'ok', MODES),
  },
  setup(ctx) {
    const { app } = ctx;
    let mode: Mode = ctx.config.failMode;
    /** Calls seen by the alternating behaviours (flaky mode and /api/sample/flaky): odd ones fail. */
    let flakyCalls = 0;
    let served = 0;
    // Answered directly (not thrown): a failure on purpose is not worth an error log line.
    const unavailable = (why: string) => problem(503, 'sample-unavailable', `${ctx.servedBy} ${why}`);

    app.addHook('onRequest', (req, reply, done) => {
      if (!req.url.startsWith('/api/sample/')) return done();
      served++;
      if (mode === 'always-503') return sendProblem(reply, unavailable('is set to fail every call (mode always-503)'));
      if (mode === 'flaky' && flakyCalls++ % 2 === 0) return sendProblem(reply, unavailable('fails every other call (mode flaky)'));
      done();
    });

    app.get('/api/sample/hello', async () => ({ hello: 'world', servedBy: ctx.servedBy }));
    app.get<{ Querystring: { ms: number } }>(
      '/api/sample/slow',
      { schema: { querystring: Type.Object({ ms: Type.Integer({ minimum: 0, maximum: ctx.config.maxSlowMs }) }, { additionalProperties: false }) } },
      async (req) => {
        await new Promise((r) => setTimeout(r, req.query.ms));
        return { sleptMs: req.query.ms, servedBy: ctx.servedBy };
      },
    );
    app.post<{ Body: { name: string; count: number } }>(
      '/api/sample/echo',
      {
        schema: {
          body: Type.Object(
            { name: Type.String({ minLength: 1, maxLength: 100 }), count: Type.Integer({ minimum: 1, maximum: 1000 }) },
            { additionalProperties: false },
          ),
        },
      },
      async (req, reply) => {
        reply.code(201);
        return { ...req.body, servedBy: ctx.servedBy };
      },
    );
    app.get('/api/sample/boom', async () => {
      throw new Error('secret internal detail that must not reach the wire');
    });
    // Answers the status asked for (an upstream that always fails the same way).
    app.get<{ Querystring: { code: number } }>(
      '/api/sample/status',
      { schema: { querystring: Type.Object({ code: Type.Integer({ minimum: 200, maximum: 599 }) }, { additionalProperties: false }) } },
      async (req, reply) => {
        reply.code(req.query.code);
        return { status: req.query.code, servedBy: ctx.servedBy };
      },
    );
    // 503 and 200 in turn, per instance: a deterministic "fails half its calls".
    app.get('/api/sample/flaky', async (_req, reply) => {
      if (flakyCalls++ % 2 === 0) {
        sendProblem(reply, unavailable('fails every other call (/api/sample/flaky)'));
        return reply;
      }
      return { ok: true, servedBy: ctx.servedBy };
    });
    // What the caller looks like from here: its mTLS principal, deadline and mesh headers.
    app.get('/api/sample/whoami', async (req) => ({
      servedBy: ctx.servedBy,
      principal: peerPrincipal(req.raw.socket),
      timeoutMs: req.headers['x-concord-timeout-ms'] ?? null,
      sourceWorkload: req.headers['x-concord-source-workload'] ?? null,
      traceparent: req.headers.traceparent ?? null,
    }));

    // Test control, on one instance's own address (not routed through the mesh).
    app.get('/internal/sample/mode', async () => ({ mode, served, servedBy: ctx.servedBy }));
    app.post<{ Body: { mode: Mode } }>(
      '/internal/sample/mode',
      { schema: { body: Type.Object({ mode: Type.Union(MODES.map((m) => Type.Literal(m))) }, { additionalProperties: false }) } },
      async (req) => {
        mode = req.body.mode;
        flakyCalls = 0;
        served = 0;
        ctx.log.info({ mode }, 'sample mode changed');
        return { mode, servedBy: ctx.servedBy };
      },
    );
  },
});
