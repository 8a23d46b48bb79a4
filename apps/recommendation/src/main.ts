/**
 * The recommendation service: top products by confirmed sales. It owns its data: a score per
 * product built from the order service's events (delivered at least once through its outbox,
 * de-duplicated here by event id). v1 ranks by units sold; v2 by revenue — two versions, so a
 * canary is visible out of the box.
 */
import { type Migration, isUniqueViolation, openServiceStore, runService } from '@concord/platform';
import { Type } from '@sinclair/typebox';
import type { Kysely } from 'kysely';

interface RecDb {
  scores: { product_id: string; units: number; revenue: number };
  processed_events: { id: string; at: string };
}

const migrations: Migration[] = [
  {
    version: 1,
    name: 'scores',
    async up(db) {
      await db.schema
        .createTable('scores')
        .addColumn('product_id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('units', 'bigint', (c) => c.notNull())
        .addColumn('revenue', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createTable('processed_events').addColumn('id', 'varchar(200)', (c) => c.primaryKey()).addColumn('at', 'varchar(40)', (c) => c.notNull()).execute();
    },
  },
];

const Item = Type.Object({ productId: Type.String({ minLength: 1, maxLength: 64 }), quantity: Type.Integer({ minimum: 1, maximum: 1_000_000 }), price: Type.Integer({ minimum: 0 }) });
const EventBody = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 200 }),
  type: Type.Union([Type.Literal('order.confirmed'), Type.Literal('order.cancelled')]),
  orderId: Type.String({ minLength: 1, maxLength: 64 }),
  userId: Type.String({ minLength: 1, maxLength: 64 }),
  items: Type.Array(Item, { minItems: 1, maxItems: 100 }),
  total: Type.Integer({ minimum: 0 }),
  at: Type.String({ maxLength: 40 }),
});
type Event = { id: string; type: 'order.confirmed' | 'order.cancelled'; items: Array<{ productId: string; quantity: number; price: number }> };

runService({
  name: 'recommendation',
  async setup(ctx) {
    const store = await openServiceStore<RecDb>(ctx, migrations);
    const rankBy = ctx.version === 'v2' ? 'revenue' : 'units';
    ctx.meta.ranking = rankBy;

    ctx.app.post<{ Body: Event }>('/internal/events', { schema: { body: EventBody } }, async (req, reply) => {
      const e = req.body;
      const sign = e.type === 'order.confirmed' ? 1 : -1;
      try {
        await store.tx(async (trx) => {
          const t = trx as Kysely<RecDb>;
          await t.insertInto('processed_events').values({ id: e.id, at: new Date().toISOString() }).execute();
          for (const it of e.items) {
            const units = sign * it.quantity;
            const revenue = sign * it.quantity * it.price;
            await t
              .insertInto('scores')
              .values({ product_id: it.productId, units, revenue })
              .onConflict((oc) => oc.column('product_id').doUpdateSet((eb) => ({ units: eb('scores.units', '+', units), revenue: eb('scores.revenue', '+', revenue) })))
              .execute();
          }
        });
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
        reply.code(200);
        return { id: e.id, duplicate: true };
      }
      reply.code(201);
      return { id: e.id };
    });

    ctx.app.get<{ Querystring: { limit?: number } }>(
      '/api/recommendations',
      { schema: { querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 50 })) }, { additionalProperties: false }) } },
      async (req) => {
        const limit = req.query.limit ?? 10;
        const rows = await store.db.selectFrom('scores').selectAll().where(rankBy, '>', 0).orderBy(rankBy, 'desc').orderBy('product_id').limit(limit).execute();
        return { items: rows.map((r) => ({ productId: r.product_id, score: Number(r[rankBy]) })), ranking: rankBy };
      },
    );

  },
});
