/**
 * Gateway placeholder: the single public entry, routing /api/sample/* to the sample service
 * through the registry. The API-gateway issue replaces it with the real gateway.
 */
import { HttpError, runService } from '@concord/platform';
import { request, Agent } from 'undici';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host', 'content-length']);

runService({
  name: 'gateway',
  portEnv: 'CONCORD_GATEWAY_PORT',
  dependsOn: ['sample'],
  setup(ctx) {
    const agent = new Agent({ connections: 64, keepAliveTimeout: 30_000 });
    ctx.onClose(() => agent.close());
    ctx.app.removeAllContentTypeParsers();
    ctx.app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    ctx.app.all('/api/sample/*', async (req, reply) => {
      const target = ctx.registry?.watch('sample').pick();
      if (!target) throw new HttpError(503, 'no-upstream', 'no passing instance of sample');
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k) && typeof v === 'string') headers[k] = v;
      headers['x-request-id'] = req.id;
      const res = await request(`${target.origin}${req.url}`, {
        method: req.method as 'GET',
        headers,
        body: req.body as Buffer | undefined,
        dispatcher: agent,
        headersTimeout: 10_000,
        bodyTimeout: 10_000,
      }).catch((err) => {
        throw new HttpError(503, 'upstream-unreachable', `sample is unreachable (${(err as { code?: string }).code ?? 'error'})`);
      });
      reply.code(res.statusCode);
      for (const [k, v] of Object.entries(res.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) reply.header(k, v);
      return reply.send(Buffer.from(await res.body.arrayBuffer()));
    });
  },
});
