/** OTLP/HTTP receiver and the trace query API (API.md). */
import { HttpError, badRequest } from '@concord/platform';
import type { FastifyInstance } from 'fastify';
import { OtlpError, decodeOtlpJson } from './otlp.js';
import type { TraceStore } from './store.js';

const MAX_OTLP_BYTES = 8 * 1_048_576;

export function traceRoutes(app: FastifyInstance, store: TraceStore, onSpans?: (n: number) => void): void {
  app.register(async (scope) => {
    // Plain JSON.parse here: Fastify's parser also scans every body for __proto__ and
    // constructor keys, which was most of the parsing time of a span export (profiled), and
    // decodeOtlpJson copies only the fields it knows into fresh objects, so such keys are inert.
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: MAX_OTLP_BYTES }, (_req, body, done) => {
      try {
        done(null, JSON.parse((body as Buffer).toString('utf8')));
      } catch {
        done(Object.assign(new SyntaxError('the body is not valid JSON'), { statusCode: 400 }), undefined);
      }
    });
    // OTLP exporters may send large batches; this route alone accepts up to 8 MiB.
    scope.post('/v1/traces', { bodyLimit: MAX_OTLP_BYTES }, async (req, reply) => {
      if (!String(req.headers['content-type'] ?? '').includes('json')) {
        throw new HttpError(415, 'otlp-json-only', 'this receiver takes OTLP/HTTP with JSON encoding (application/json); configure the exporter for http/json');
      }
      let spans: ReturnType<typeof decodeOtlpJson>;
      try {
        spans = decodeOtlpJson(req.body);
      } catch (err) {
        if (err instanceof OtlpError) throw badRequest([{ path: '/body', message: err.message }]);
        throw err;
      }
      store.add(spans, Date.now());
      onSpans?.(spans.length);
      reply.code(200);
      return { partialSuccess: {} };
    });
  });

  app.get<{ Params: { traceId: string } }>('/api/traces/:traceId', async (req) => {
    if (!/^[0-9a-f]{32}$/.test(req.params.traceId)) throw badRequest([{ path: '/params/traceId', message: 'must be 32 lower-case hexadecimal characters' }]);
    const t = store.get(req.params.traceId);
    if (!t) throw new HttpError(404, 'not-found', 'no such trace (it may have aged out of the store)');
    return t;
  });

  app.get<{ Querystring: { service?: string; status?: 'OK' | 'ERROR'; minDurationMs?: number; maxDurationMs?: number; limit?: number; name?: string } }>(
    '/api/traces',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            service: { type: 'string', maxLength: 64 },
            status: { type: 'string', enum: ['OK', 'ERROR'] },
            minDurationMs: { type: 'number', minimum: 0 },
            maxDurationMs: { type: 'number', minimum: 0 },
            limit: { type: 'integer', minimum: 1, maximum: 1000 },
            name: { type: 'string', maxLength: 200 },
          },
        },
      },
    },
    async (req) => ({ items: store.search({ ...req.query, limit: req.query.limit ?? 20 }), stored: store.size, spans: store.spans }),
  );
}
