/**
 * The Consul HTTP API subset (see API.md) over the registry, with Consul's response shapes.
 */
import { mesh, parseDuration } from '@concord/core';
import { HttpError, badRequest } from '@concord/platform';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { Catalog, NODE_NAME, type CheckState, type ServiceState } from './catalog.js';
import type { Registry } from './registry.js';
import { parseRegistration } from './validate.js';

const DEFAULT_WAIT_MS = 5 * 60_000;
const MAX_WAIT_MS = 10 * 60_000;
const NODE_ADDRESS = '127.0.0.1';
const DATACENTER = 'dc1';

function nodeJson(index: number) {
  return {
    ID: '00000000-0000-0000-0000-000000000001',
    Node: NODE_NAME,
    Address: NODE_ADDRESS,
    Datacenter: DATACENTER,
    TaggedAddresses: { lan: NODE_ADDRESS, wan: NODE_ADDRESS },
    Meta: {},
    CreateIndex: 1,
    ModifyIndex: index,
  };
}

function serviceJson(s: ServiceState) {
  return {
    ID: s.id,
    Service: s.name,
    Tags: s.tags,
    Address: s.address,
    Meta: s.meta,
    Port: s.port,
    Weights: s.weights,
    EnableTagOverride: false,
    Datacenter: DATACENTER,
    CreateIndex: s.createIndex,
    ModifyIndex: s.modifyIndex,
  };
}

function checkJson(s: ServiceState, c: CheckState) {
  return {
    Node: NODE_NAME,
    CheckID: c.checkId,
    Name: c.name,
    Status: c.status,
    Notes: c.notes,
    Output: c.output,
    ServiceID: s.id,
    ServiceName: s.name,
    ServiceTags: s.tags,
    Type: c.type,
    Interval: c.definition.Interval ?? '',
    Timeout: c.definition.Timeout ?? '',
    Definition: c.definition,
    CreateIndex: c.createIndex,
    ModifyIndex: c.modifyIndex,
  };
}

const SERF_CHECK = {
  Node: NODE_NAME,
  CheckID: 'serfHealth',
  Name: 'Serf Health Status',
  Status: 'passing',
  Notes: '',
  Output: 'Agent alive and reachable',
  ServiceID: '',
  ServiceName: '',
  ServiceTags: [],
  Type: '',
  Interval: '',
  Timeout: '',
  Definition: {},
  CreateIndex: 1,
  ModifyIndex: 1,
};

function flag(v: unknown): boolean {
  // Consul treats a present `passing` (even empty) as true unless it says false/0.
  return v !== undefined && v !== 'false' && v !== '0';
}

function blockingParams(q: Record<string, unknown>): { index: number; waitMs: number } {
  let index = 0;
  if (q.index !== undefined) {
    if (typeof q.index !== 'string' || !/^\d{1,15}$/.test(q.index)) throw badRequest([{ path: '/query/index', message: 'must be a non-negative integer' }]);
    index = Number(q.index);
  }
  let waitMs = DEFAULT_WAIT_MS;
  if (q.wait !== undefined) {
    const raw = typeof q.wait === 'string' && /^\d+$/.test(q.wait) ? `${q.wait}s` : q.wait;
    const r = parseDuration(raw);
    if (!r.ok) throw badRequest([{ path: '/query/wait', message: r.error }]);
    waitMs = Math.min(r.ms, MAX_WAIT_MS); // clamped, as Consul does
  }
  return { index, waitMs };
}

/** Aborts when the response ends or the client goes away (one listener per request, not per socket). */
function abortOnClose(reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  reply.raw.once('close', () => ac.abort());
  return ac.signal;
}

export function registryRoutes(app: FastifyInstance, registry: Registry): void {
  const cat = registry.catalog;
  const consulJson = (reply: FastifyReply, index: number, body: unknown) => {
    reply.header('x-consul-index', String(index)).header('x-consul-knownleader', 'true').header('x-consul-lastcontact', '0');
    return body;
  };

  app.put('/v1/agent/service/register', async (req) => {
    const parsed = parseRegistration(req.body, NODE_ADDRESS);
    if (!parsed.ok) throw badRequest(parsed.errors, 'the service registration is invalid');
    for (const c of parsed.spec.checks) {
      if (!cat.checkIdAvailable(c.checkId, parsed.spec.id)) {
        throw badRequest([{ path: '/body/Check/CheckID', message: `check ${c.checkId} belongs to another service` }]);
      }
    }
    registry.register(parsed.spec);
    req.log.debug({ id: parsed.spec.id }, 'registered');
    return '';
  });

  app.put<{ Params: { id: string } }>('/v1/agent/service/deregister/:id', async (req) => {
    if (!registry.deregister(req.params.id)) throw new HttpError(404, 'unknown-service', `Unknown service ID "${req.params.id}"`);
    return '';
  });

  for (const [verb, status] of [['pass', 'passing'], ['warn', 'warning'], ['fail', 'critical']] as const) {
    app.put<{ Params: { id: string }; Querystring: { note?: string } }>(`/v1/agent/check/${verb}/:id`, async (req) => {
      const note = typeof req.query.note === 'string' ? req.query.note.slice(0, 4096) : '';
      if (!cat.getCheck(req.params.id)) throw new HttpError(404, 'unknown-check', `Unknown check ID "${req.params.id}"`);
      if (cat.getCheck(req.params.id)?.type !== 'ttl') throw new HttpError(400, 'not-ttl', `check "${req.params.id}" is not a TTL check`);
      registry.setCheck(req.params.id, status, note);
      return '';
    });
  }

  app.put<{ Params: { id: string } }>('/v1/agent/check/update/:id', async (req) => {
    const b = req.body as { Status?: unknown; Output?: unknown } | null;
    const st = b?.Status;
    if (st !== 'passing' && st !== 'warning' && st !== 'critical') throw badRequest([{ path: '/body/Status', message: 'must be passing, warning or critical' }]);
    if (b?.Output !== undefined && typeof b.Output !== 'string') throw badRequest([{ path: '/body/Output', message: 'must be a string' }]);
    if (cat.getCheck(req.params.id)?.type !== 'ttl') throw new HttpError(404, 'unknown-check', `Unknown TTL check ID "${req.params.id}"`);
    registry.setCheck(req.params.id, st, (b?.Output as string | undefined) ?? '');
    return '';
  });

  app.get<{ Params: { name: string }; Querystring: Record<string, string> }>('/v1/health/service/:name', async (req, reply) => {
    const { index, waitMs } = blockingParams(req.query);
    await registry.waitFor(req.params.name, index, waitMs, abortOnClose(reply));
    const passing = flag(req.query.passing);
    const tag = req.query.tag;
    const out = [];
    for (const s of cat.instancesOf(req.params.name)) {
      if (tag !== undefined && !s.tags.includes(tag)) continue;
      if (passing && Catalog.aggregate(s.checks) !== 'passing') continue;
      out.push({ Node: nodeJson(cat.index), Service: serviceJson(s), Checks: [SERF_CHECK, ...s.checks.map((c) => checkJson(s, c))] });
    }
    return consulJson(reply, cat.indexOf(req.params.name), out);
  });

  app.get<{ Params: { name: string }; Querystring: Record<string, string> }>('/v1/catalog/service/:name', async (req, reply) => {
    const { index, waitMs } = blockingParams(req.query);
    await registry.waitFor(req.params.name, index, waitMs, abortOnClose(reply));
    const out = cat.instancesOf(req.params.name).map((s) => ({
      ...nodeJson(cat.index),
      ServiceID: s.id,
      ServiceName: s.name,
      ServiceTags: s.tags,
      ServiceAddress: s.address,
      ServicePort: s.port,
      ServiceMeta: s.meta,
      ServiceWeights: s.weights,
      CreateIndex: s.createIndex,
      ModifyIndex: s.modifyIndex,
    }));
    return consulJson(reply, cat.indexOf(req.params.name), out);
  });

  app.get('/v1/catalog/services', async (_req, reply) => consulJson(reply, cat.index, cat.serviceNames()));

  app.get('/v1/agent/services', async () => Object.fromEntries(cat.all().map((s) => [s.id, serviceJson(s)])));

  app.get<{ Params: { id: string } }>('/v1/agent/service/:id', async (req) => {
    const s = cat.service(req.params.id);
    if (!s) throw new HttpError(404, 'unknown-service', `unknown service ID "${req.params.id}"`);
    return serviceJson(s);
  });

  app.get('/v1/agent/checks', async () =>
    Object.fromEntries(cat.all().flatMap((s) => s.checks.map((c) => [c.checkId, checkJson(s, c)]))),
  );

  app.get('/v1/status/leader', async (req) => `${NODE_ADDRESS}:${req.socket.localPort}`);

  /** Concord's own view for `concord status` and the console. */
  app.get('/api/registry/instances', async () => ({
    index: cat.index,
    items: cat.all().map((s) => ({
      id: s.id,
      service: s.name,
      version: mesh.instanceVersion(s),
      address: s.address,
      port: s.port,
      status: Catalog.aggregate(s.checks),
      meta: s.meta,
      registeredAt: new Date(s.registeredAtMs).toISOString(),
      checks: s.checks.map((c) => ({ id: c.checkId, status: c.status, output: c.output })),
    })),
  }));
}
