/**
 * A small service that exercises the service kit end to end: registration, health, validation,
 * problem+json, and slow requests for graceful-shutdown tests.
 */
import { runService, intVar } from '@concord/platform';
import { Type } from '@sinclair/typebox';

runService({
  name: 'sample',
  config: { maxSlowMs: intVar('SAMPLE_MAX_SLOW_MS', 30_000, 0, 600_000) },
  setup(ctx) {
    const { app } = ctx;
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
  },
});
