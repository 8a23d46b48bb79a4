/** OTLP/HTTP receiver (protobuf and JSON encodings) and the trace query API (API.md). */
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { HttpError, badRequest } from '@concord/platform';
import type { FastifyInstance } from 'fastify';
import { OtlpError, decodeOtlpJsonBytes } from './otlp.js';
import { ProtoError, encodeStored, indexOtlpProto } from './otlp-proto.js';
import { RECEIVED_FIELDS, type ReceivedSpans } from './received.js';
import type { TraceStore } from './store.js';

const PROTOBUF = 'application/x-protobuf';

const MAX_OTLP_BYTES = 8 * 1_048_576;
const gunzipAsync = promisify(gunzip);

export function traceRoutes(app: FastifyInstance, store: TraceStore, onSpans?: (n: number) => void): void {
  app.register(async (scope) => {
    // Both encodings arrive as bytes: a body may be gzip-compressed (the OpenTelemetry
    // Collector's otlphttp exporter compresses by default), and is parsed once unpacked.
    scope.removeContentTypeParser('application/json');
    for (const type of ['application/json', PROTOBUF]) scope.addContentTypeParser(type, { parseAs: 'buffer', bodyLimit: MAX_OTLP_BYTES }, (_req, body, done) => done(null, body));
    // OTLP exporters may send large batches; this route alone accepts up to 8 MiB (unpacked too).
    scope.post('/v1/traces', { bodyLimit: MAX_OTLP_BYTES }, async (req, reply) => {
      const type = String(req.headers['content-type'] ?? '').toLowerCase();
      const protobuf = type.startsWith(PROTOBUF);
      if (!protobuf && !type.includes('json')) {
        throw new HttpError(415, 'otlp-encoding', 'this receiver takes OTLP/HTTP with protobuf (application/x-protobuf) or JSON (application/json) encoding', {
          errors: [{ path: '/headers/content-type', message: 'must be application/x-protobuf or application/json' }],
        });
      }
      const encoding = String(req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
      if (encoding !== 'identity' && encoding !== 'gzip') {
        throw new HttpError(415, 'otlp-content-encoding', 'this receiver takes uncompressed or gzip-compressed bodies', {
          errors: [{ path: '/headers/content-encoding', message: 'must be gzip or identity' }],
        });
      }
      let bytes = req.body as Buffer;
      if (encoding === 'gzip') {
        try {
          bytes = await gunzipAsync(bytes, { maxOutputLength: MAX_OTLP_BYTES });
        } catch {
          throw badRequest([{ path: '/body', message: `not a gzip stream, or more than ${MAX_OTLP_BYTES} bytes unpacked` }]);
        }
      }
      let received: ReceivedSpans;
      try {
        received = protobuf ? indexOtlpProto(bytes) : encodeStored(decodeOtlpJsonBytes(bytes));
      } catch (err) {
        if (err instanceof OtlpError || err instanceof ProtoError) throw badRequest([{ path: '/body', message: err.message }]);
        throw err;
      }
      store.addReceived(received, Date.now());
      onSpans?.(received.spans.length / RECEIVED_FIELDS);
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
