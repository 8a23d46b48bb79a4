/** The public catalogue (API.md): routed by the gateway, no auth. */
import { HttpError } from '@concord/platform';
import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Products } from '../products.js';
import { type PageQuery, ProductParams, PublicPageQuery } from '../schemas.js';
import { cursorParam } from './paging.js';

export function publicRoutes(app: FastifyInstance, products: Products): void {
  app.get<{ Querystring: PageQuery }>('/api/products', { schema: { querystring: PublicPageQuery } }, async (req) =>
    products.page(cursorParam(req.query.cursor), req.query.limit),
  );

  app.get<{ Params: Static<typeof ProductParams> }>('/api/products/:id', { schema: { params: ProductParams } }, async (req) => {
    const p = await products.get(req.params.id);
    if (!p) throw new HttpError(404, 'unknown-product', `no product ${req.params.id}`, { productId: req.params.id });
    return p;
  });
}
