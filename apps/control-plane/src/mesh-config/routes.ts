/**
 * The mesh configuration API (see API.md and the README):
 *
 * - `GET /api/config` → `{version, resources, config, status}`
 * - `POST /api/config` — a YAML stream (application/yaml, text/yaml, application/x-yaml, or
 *   application/json `{"yaml": "..."}`) → 200 `{version, changed, applied, deleted}`, or 400
 *   problem+json with `errors: [{path: "Kind/name: field.path", message, ...}]`; nothing applied
 * - `DELETE /api/config/:kind/:name` → 200 `{version, deleted}`, 404, or 409 when the rest of
 *   the configuration depends on it
 * - `GET /api/config/status` → `{version, resources: [...], instances: [...]}`
 * - `GET /api/config/watch?version=N&wait=30s` → `{version, config}` (long poll)
 * - `PUT /api/config/ack` `{instanceId, version, error?, tracing?: {enabled, sampling, exporter?}}` → 204
 */
import { mesh, parseDuration } from '@concord/core';
import { HttpError, badRequest } from '@concord/platform';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isObj } from './fields.js';
import { MAX_STREAM_BYTES } from './parse.js';
import type { ServiceSpec } from '../registry/catalog.js';
import type { MeshConfigService } from './service.js';
import { kindOf } from './validate.js';

const YAML_TYPES = ['application/yaml', 'text/yaml', 'application/x-yaml', 'text/x-yaml'];
const DEFAULT_WAIT_MS = 30_000;
const MAX_WAIT_MS = 5 * 60_000;

/**
 * Aborts when the client goes away before the answer. Listening on the response (one per
 * request) rather than on the socket keeps a keep-alive connection that carries watch after
 * watch from collecting a listener per request.
 */
function abortOnClose(reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  reply.raw.once('close', () => ac.abort());
  return ac.signal;
}

function yamlOf(req: FastifyRequest): string {
  const body = req.body as unknown;
  if (typeof body === 'string') {
    if (body.trim().length === 0) throw badRequest([{ path: '/body', message: 'is empty; send a YAML stream of Istio resources' }]);
    return body;
  }
  if (typeof body === 'object' && body !== null && !Array.isArray(body)) {
    const keys = Object.keys(body);
    const yaml = (body as { yaml?: unknown }).yaml;
    const extra = keys.filter((k) => k !== 'yaml');
    if (extra.length > 0) throw badRequest(extra.map((k) => ({ path: `/body/${k}`, message: 'is not a known field (send {"yaml": "..."})' })));
    if (typeof yaml !== 'string' || yaml.trim().length === 0)
      throw badRequest([{ path: '/body/yaml', message: 'must be a non-empty string holding a YAML stream' }]);
    if (Buffer.byteLength(yaml) > MAX_STREAM_BYTES) throw new HttpError(413, 'body-too-large', `the YAML stream is larger than ${MAX_STREAM_BYTES} bytes`);
    return yaml;
  }
  throw badRequest([{ path: '/body', message: 'send a YAML stream (Content-Type: application/yaml) or {"yaml": "..."}' }]);
}

/** A registered instance as the registry's catalog holds it. */
type Registered = Pick<ServiceSpec, 'id' | 'name'>;

export function meshConfigRoutes(app: FastifyInstance, svc: MeshConfigService, opts: { instances: () => Registered[] }): void {
  const store = svc.store;

  app.get('/api/config', async () => ({
    version: store.version,
    resources: store.applied().map((r) => r.doc),
    config: store.config,
    status: store.status(),
  }));

  app.get('/api/config/status', async () => {
    const registered = opts.instances();
    const serviceOf = new Map(registered.map((i) => [i.id, i.name]));
    const acked = store.ackList();
    const ackedIds = new Set(acked.map((a) => a.instanceId));
    return {
      version: store.version,
      resources: store.status(),
      instances: [
        ...acked.map((a) => ({
          instanceId: a.instanceId,
          service: serviceOf.get(a.instanceId) ?? null,
          version: a.version,
          current: a.version === store.version && !a.error,
          // As the instance reported it with its acknowledgement (null: it did not say).
          tracing: a.tracing ?? null,
          ...(a.error ? { error: a.error } : {}),
          ackedAt: a.ackedAt,
        })),
        // Registered instances that never acknowledged a configuration (the control plane has no data plane).
        ...registered
          .filter((i) => !ackedIds.has(i.id) && i.name !== 'control-plane')
          .map((i) => ({ instanceId: i.id, service: i.name, version: null, current: false, tracing: null, ackedAt: null })),
      ],
    };
  });

  // YAML bodies are accepted on this route only (the service kit parses JSON elsewhere).
  app.register(async (scope) => {
    scope.addContentTypeParser(YAML_TYPES, { parseAs: 'string', bodyLimit: MAX_STREAM_BYTES }, (_req, body, done) => done(null, body));
    scope.post('/api/config', async (req, reply) => {
      const source = req.headers['x-concord-source'] === 'cli' ? 'cli' : 'api';
      const r = svc.applyYaml(yamlOf(req), source);
      if (!r.ok) {
        const n = r.errors.length;
        throw new HttpError(
          400,
          'invalid-mesh-config',
          `${n} problem${n === 1 ? '' : 's'} in the configuration; nothing was applied (version ${r.version} stays in force)`,
          {
            errors: r.errors,
            version: r.version,
            rejected: r.rejected,
          },
        );
      }
      reply.header('x-concord-config-version', String(r.version));
      return { version: r.version, changed: r.changed, applied: r.applied, deleted: r.deleted };
    });
  });

  app.delete<{ Params: { kind: string; name: string } }>('/api/config/:kind/:name', async (req, reply) => {
    const kind = kindOf(req.params.kind);
    if (!kind)
      throw badRequest([
        { path: '/params/kind', message: 'must be VirtualService, DestinationRule, PeerAuthentication, AuthorizationPolicy or Telemetry (or vs, dr, pa, ap, telemetry)' },
      ]);
    const r = svc.remove(kind, req.params.name);
    if (!r.ok) {
      if (r.status === 404) throw new HttpError(404, 'not-found', r.detail);
      throw new HttpError(409, 'mesh-config-conflict', r.detail, { errors: r.errors });
    }
    reply.header('x-concord-config-version', String(r.version));
    return { version: r.version, deleted: { kind, name: req.params.name } };
  });

  app.get<{ Querystring: Record<string, string> }>('/api/config/watch', async (req, reply) => {
    const q = req.query;
    let version: number | null = null;
    if (q.version !== undefined) {
      if (typeof q.version !== 'string' || !/^\d{1,15}$/.test(q.version))
        throw badRequest([{ path: '/query/version', message: 'must be a non-negative integer' }]);
      version = Number(q.version);
    }
    let waitMs = DEFAULT_WAIT_MS;
    if (q.wait !== undefined) {
      const raw = typeof q.wait === 'string' && /^\d+$/.test(q.wait) ? `${q.wait}s` : q.wait;
      const r = parseDuration(raw);
      if (!r.ok) throw badRequest([{ path: '/query/wait', message: r.error }]);
      waitMs = Math.min(r.ms, MAX_WAIT_MS);
    }
    if (version !== null) await svc.waitForChange(version, waitMs, abortOnClose(reply));
    const config = store.config;
    reply.header('x-concord-config-version', String(config.version));
    return { version: config.version, config };
  });

  app.put('/api/config/ack', async (req, reply) => {
    const b = req.body as Record<string, unknown> | null;
    if (typeof b !== 'object' || b === null || Array.isArray(b)) throw badRequest([{ path: '/body', message: 'must be {instanceId, version, error?, tracing?}' }]);
    const errors = Object.keys(b)
      .filter((k) => !['instanceId', 'version', 'error', 'tracing'].includes(k))
      .map((k) => ({ path: `/body/${k}`, message: 'is not a known field' }));
    if (typeof b.instanceId !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(b.instanceId))
      errors.push({ path: '/body/instanceId', message: 'must be 1 to 64 letters, digits, ".", "_" or "-"' });
    if (typeof b.version !== 'number' || !Number.isSafeInteger(b.version) || b.version < 0)
      errors.push({ path: '/body/version', message: 'must be a non-negative integer' });
    if (b.error !== undefined && (typeof b.error !== 'string' || b.error.length > 4096))
      errors.push({ path: '/body/error', message: 'must be a string of at most 4096 characters' });
    if (b.tracing !== undefined) errors.push(...tracingReportErrors(b.tracing));
    if (errors.length > 0) throw badRequest(errors);
    svc.ack(b.instanceId as string, b.version as number, b.error as string | undefined, b.tracing as mesh.TracingReport | undefined);
    reply.code(204);
    return '';
  });
}

/** `tracing` of an acknowledgement: `{enabled: boolean, sampling: null | {percentage: 0–100, telemetry: name}, exporter?: one of mesh.TRACES_EXPORTERS}`. */
function tracingReportErrors(t: unknown): Array<{ path: string; message: string }> {
  const at = '/body/tracing';
  if (!isObj(t)) return [{ path: at, message: 'must be {enabled, sampling, exporter?}' }];
  const errors = Object.keys(t)
    .filter((k) => k !== 'enabled' && k !== 'sampling' && k !== 'exporter')
    .map((k) => ({ path: `${at}/${k}`, message: 'is not a known field' }));
  if (typeof t.enabled !== 'boolean') errors.push({ path: `${at}/enabled`, message: 'must be true or false' });
  if (t.exporter !== undefined && !(mesh.TRACES_EXPORTERS as readonly unknown[]).includes(t.exporter))
    errors.push({ path: `${at}/exporter`, message: `must be one of ${mesh.TRACES_EXPORTERS.join(', ')}` });
  const s = t.sampling;
  if (s === null) return errors;
  if (!isObj(s)) return [...errors, { path: `${at}/sampling`, message: 'must be null or {percentage, telemetry}' }];
  for (const k of Object.keys(s)) if (k !== 'percentage' && k !== 'telemetry') errors.push({ path: `${at}/sampling/${k}`, message: 'is not a known field' });
  if (typeof s.percentage !== 'number' || !Number.isFinite(s.percentage) || s.percentage < 0 || s.percentage > 100)
    errors.push({ path: `${at}/sampling/percentage`, message: 'must be a number from 0 to 100' });
  if (typeof s.telemetry !== 'string' || s.telemetry.length === 0 || s.telemetry.length > 253)
    errors.push({ path: `${at}/sampling/telemetry`, message: 'must be a resource name of 1 to 253 characters' });
  return errors;
}
