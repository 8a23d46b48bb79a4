/** Admin routes (role admin): the caller is authenticated before the body is even read. */
import { type Guard, HttpError } from '@concord/platform';
import type { Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Products } from '../products.js';
import { AddStockBody, AdminPageQuery, CreateProductBody, type PageQuery, ProductParams } from '../schemas.js';
import { cursorParam } from './paging.js';

/** `guard` is null when this instance has no registry (so no way to fetch signing keys). */
export function adminRoutes(app: FastifyInstance, products: Products, guard: Guard | null): void {
  const onRequest = async (req: FastifyRequest): Promise<void> => {
    if (!guard) throw new HttpError(503, 'auth-unavailable', 'this instance runs without a registry and cannot verify tokens');
    await guard.admin(req);
  };

  app.post<{ Body: Static<typeof CreateProductBody> }>('/api/admin/products', { onRequest, schema: { body: CreateProductBody } }, async (req, reply) => {
    reply.code(201);
    return products.create(req.body, Date.now());
  });

  app.post<{ Params: Static<typeof ProductParams>; Body: Static<typeof AddStockBody> }>(
    '/api/admin/products/:id/stock',
    { onRequest, schema: { params: ProductParams, body: AddStockBody } },
    async (req) => products.addStock(req.params.id, req.body.quantity, Date.now()),
  );

  app.get<{ Querystring: PageQuery }>('/api/admin/inventory', { onRequest, schema: { querystring: AdminPageQuery } }, async (req) =>
    products.stockPage(cursorParam(req.query.cursor), req.query.limit),
  );
}
