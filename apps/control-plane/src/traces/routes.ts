/** OTLP/HTTP receiver (protobuf and JSON encodings) and the trace query API (API.md). */
import { HttpError, badRequest } from '@concord/platform';
import type { FastifyInstance } from 'fastify';
import { OtlpError, decodeOtlpJson } from './otlp.js';
import { ProtoError, indexOtlpProto } from './otlp-proto.js';
import { type SpanRecord, type TraceStore, recordOf } from './store.js';

const PROTOBUF = 'application/x-protobuf';

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
    // The binary encoding (what Concord's services and most OpenTelemetry SDKs send): the body
    // stays a Buffer, and the stored spans point into it.
    scope.addContentTypeParser(PROTOBUF, { parseAs: 'buffer', bodyLimit: MAX_OTLP_BYTES }, (_req, body, done) => done(null, body));
    // OTLP exporters may send large batches; this route alone accepts up to 8 MiB.
    scope.post('/v1/traces', { bodyLimit: MAX_OTLP_BYTES }, async (req, reply) => {
      const type = String(req.headers['content-type'] ?? '').toLowerCase();
      const protobuf = type.startsWith(PROTOBUF);
      if (!protobuf && !type.includes('json')) {
        throw new HttpError(415, 'otlp-encoding', 'this receiver takes OTLP/HTTP with protobuf (application/x-protobuf) or JSON (application/json) encoding', {
          errors: [{ path: '/headers/content-type', message: 'must be application/x-protobuf or application/json' }],
        });
      }
      let records: SpanRecord[];
      try {
        records = protobuf ? indexOtlpProto(req.body as Buffer) : decodeOtlpJson(req.body).map(recordOf);
      } catch (err) {
        if (err instanceof OtlpError || err instanceof ProtoError) throw badRequest([{ path: '/body', message: err.message }]);
        throw err;
      }
      store.addRecords(records, Date.now());
      onSpans?.(records.length);
      reply.code(200);
      // OTLP answers in the request's encoding; an empty ExportTraceServiceResponse is zero bytes.
      if (protobuf) return reply.type(PROTOBUF).send(Buffer.alloc(0));
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
