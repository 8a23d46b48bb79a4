/**
 * Internal routes, called by the order service through the mesh (no auth; the gateway never
 * routes /internal). Every status-changing route is idempotent by reservation id.
 */
import { HttpError, type Store, badRequest, batchRoute } from '@concord/platform';
import type { Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { LOOKUP_MAX_IDS, PRODUCT_ID_PATTERN } from '../domain/limits.js';
import type { Products } from '../products.js';
import type { InventoryDb } from '../db.js';
import { Reservations } from '../reservations.js';
import { BatchReservationItem, LookupQuery, ReservationParams, ReserveBody } from '../schemas.js';

const PRODUCT_ID = new RegExp(PRODUCT_ID_PATTERN);

/** `a,b,c` → distinct ids in order; 400 naming /query/ids when malformed or too many. */
export function parseIdList(raw: string): string[] {
  const ids = [...new Set(raw.split(','))];
  const bad = ids.find((id) => !PRODUCT_ID.test(id));
  if (bad !== undefined) throw badRequest([{ path: '/query/ids', message: `${JSON.stringify(bad)} is not a product id (comma-separated ids expected)` }]);
  if (ids.length > LOOKUP_MAX_IDS) throw badRequest([{ path: '/query/ids', message: `must name at most ${LOOKUP_MAX_IDS} products` }]);
  return ids;
}

/** The command routes take no body; an empty one (`{}`) is tolerated, anything else refused. */
function noBody(req: FastifyRequest): void {
  const b = req.body;
  if (b === undefined || b === null) return;
  if (typeof b !== 'object' || Array.isArray(b)) throw badRequest([{ path: '/body', message: 'must be absent or {}' }]);
  const field = Object.keys(b)[0];
  if (field !== undefined) throw badRequest([{ path: `/body/${field}`, message: 'is not an allowed field' }]);
}

export function internalRoutes(app: FastifyInstance, products: Products, reservations: Reservations, opts: { defaultTtlMs: number; store: Store<InventoryDb> }): void {
  // Many reservation commands in one request and one transaction; each answers as its single route.
  batchRoute<InventoryDb, BatchReservationItem>(app, {
    path: '/internal/batch/reservations',
    itemSchema: BatchReservationItem,
    store: opts.store,
    handle: async (store, item, now) => {
      const r = new Reservations(store);
      if (item.op === 'reserve') {
        const { op: _op, ...req } = item;
        const { created, reservation } = await r.reserve({ ...req, ttlMs: req.ttlMs ?? opts.defaultTtlMs }, now);
        return { status: created ? 201 : 200, body: reservation };
      }
      const { reservationId, status } = await r.command(item.op, item.reservationId, now);
      return { status: 200, body: { reservationId, status } };
    },
  });

  app.get<{ Querystring: Static<typeof LookupQuery> }>('/internal/products', { schema: { querystring: LookupQuery } }, async (req) => ({
    items: await products.byIds(parseIdList(req.query.ids)),
  }));

  app.post<{ Body: ReserveBody }>('/internal/reservations', { schema: { body: ReserveBody } }, async (req, reply) => {
    const { created, reservation } = await reservations.reserve({ ...req.body, ttlMs: req.body.ttlMs ?? opts.defaultTtlMs }, Date.now());
    reply.code(created ? 201 : 200);
    return reservation;
  });

  app.get<{ Params: Static<typeof ReservationParams> }>('/internal/reservations/:id', { schema: { params: ReservationParams } }, async (req) => {
    const r = await reservations.get(req.params.id);
    if (!r) throw new HttpError(404, 'unknown-reservation', `no reservation ${req.params.id}`, { reservationId: req.params.id });
    return r;
  });

  for (const cmd of ['confirm', 'release', 'restock'] as const) {
    app.post<{ Params: Static<typeof ReservationParams> }>(`/internal/reservations/:id/${cmd}`, { schema: { params: ReservationParams } }, async (req) => {
      noBody(req);
      const { reservationId, status } = await reservations.command(cmd, req.params.id, Date.now());
      return { reservationId, status };
    });
  }
}
