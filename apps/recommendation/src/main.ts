/**
 * The recommendation service: top products by confirmed sales. It owns its data: a score per
 * product built from the order service's events (delivered at least once through its outbox,
 * de-duplicated here by event id). v1 ranks by units sold; v2 by revenue — two versions, so a
 * canary is visible out of the box.
 */
import { type Migration, type Store, batchRoute, openServiceStore, prepared, runService } from '@concord/platform';
import { Type } from '@sinclair/typebox';
import { type Kysely, sql } from 'kysely';

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

// The event path's statements, prepared (built and compiled once; see platform's store/prepared.ts):
// built per event, Kysely's builder cost this service more CPU than SQLite running them (profiled).
type Db = Kysely<RecDb>;
const processedById = prepared<{ id: string }, { id: string }>(['id'], (db: Db, p) => db.selectFrom('processed_events').select('id').where('id', '=', p.id));
const markProcessed = prepared<{ id: string; at: string }>(['id', 'at'], (db: Db, p) => db.insertInto('processed_events').values({ id: p.id, at: p.at }));
/** Adds to a product's score: ON CONFLICT, or on MySQL (which has none) ON DUPLICATE KEY UPDATE. */
const scoreUpsert = (mysql: boolean) =>
  prepared<{ productId: string; units: number; revenue: number }>(['productId', 'units', 'revenue'], (db: Db, p) => {
    const insert = db.insertInto('scores').values({ product_id: p.productId, units: p.units, revenue: p.revenue });
    const added = { units: sql<number>`scores.units + ${p.units}`, revenue: sql<number>`scores.revenue + ${p.revenue}` };
    return mysql ? insert.onDuplicateKeyUpdate(added) : insert.onConflict((oc) => oc.column('product_id').doUpdateSet(added));
  });
const addScore = scoreUpsert(false);
const addScoreMysql = scoreUpsert(true);

runService({
  name: 'recommendation',
  async setup(ctx) {
    const store = await openServiceStore<RecDb>(ctx, migrations);
    const rankBy = ctx.version === 'v2' ? 'revenue' : 'units';
    const upsertScore = store.dialect === 'mysql' ? addScoreMysql : addScore;
    ctx.meta.ranking = rankBy;

    /** Applies an event once (by id); answers as the single route does. */
    const apply = (st: Store<RecDb>, e: Event) =>
      st.tx(async (trx) => {
        // Checked first rather than caught as a unique violation, which would abort the whole
        // transaction on PostgreSQL (and with it a batch's other events).
        if (await processedById.first(trx, { id: e.id })) return { status: 200, body: { id: e.id, duplicate: true } };
        await markProcessed.run(trx, { id: e.id, at: new Date().toISOString() });
        const sign = e.type === 'order.confirmed' ? 1 : -1;
        for (const it of e.items) await upsertScore.run(trx, { productId: it.productId, units: sign * it.quantity, revenue: sign * it.quantity * it.price });
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
