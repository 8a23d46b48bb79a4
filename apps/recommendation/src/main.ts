/**
 * The recommendation service: top products by confirmed sales. It owns its data: a score per
 * product built from the order service's events (delivered at least once through its outbox,
 * de-duplicated here by event id). v1 ranks by units sold; v2 by revenue — two versions, so a
 * canary is visible out of the box.
 */
import { type Migration, type Store, batchRoute, openServiceStore, runService } from '@concord/platform';
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

    /** Applies an event once (by id); answers as the single route does. */
    const apply = (st: Store<RecDb>, e: Event) =>
      st.tx(async (trx) => {
        const t = trx as Kysely<RecDb>;
        // Checked first rather than caught as a unique violation, which would abort the whole
        // transaction on PostgreSQL (and with it a batch's other events).
        if (await t.selectFrom('processed_events').select('id').where('id', '=', e.id).executeTakeFirst()) return { status: 200, body: { id: e.id, duplicate: true } };
        await t.insertInto('processed_events').values({ id: e.id, at: new Date().toISOString() }).execute();
        const sign = e.type === 'order.confirmed' ? 1 : -1;
        for (const it of e.items) {
          const units = sign * it.quantity;
          const revenue = sign * it.quantity * it.price;
          await t
            .insertInto('scores')
            .values({ product_id: it.productId, units, revenue })
            .onConflict((oc) => oc.column('product_id').doUpdateSet((eb) => ({ units: eb('scores.units', '+', units), revenue: eb('scores.revenue', '+', revenue) })))
            .execute();
        }
        return { status: 201, body: { id: e.id } };
      });

    ctx.app.post<{ Body: Event }>('/internal/events', { schema: { body: EventBody } }, async (req, reply) => {
      const r = await apply(store, req.body);
      reply.code(r.status);
      return r.body;
    });
    batchRoute<RecDb, Event>(ctx.app, { path: '/internal/batch/events', itemSchema: EventBody, store, handle: (bound, e) => apply(bound, e) });

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
