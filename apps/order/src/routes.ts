import {
  Guard,
  HttpError,
  OutboxRelay,
  SagaRuntime,
  type ServiceContext,
  UpstreamError,
  badRequest,
  claimKey,
  completeKey,
  releaseLocksOf,
  idempotencyKeyOf,
  openServiceStore,
  prepared,
  preparedList,
  requestFingerprint,
  sweepKeys,
  timeOrderedId,
} from '@concord/platform';
import { Type } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import type { Kysely } from 'kysely';
import { type Cursor, type Line, type LineIn, type Order, type OrderStatus, TERMINAL, decodeCursor, duplicateProducts, encodeCursor, pointsFor, preferWaitS, priceLines } from './domain/order.js';
import { type OrderDb, migrations } from './migrations.js';
import { PriceCache } from './prices.js';
import { type CancelOrderData, type PlaceOrderData, cancelOrderSaga, participants, placeOrderSaga } from './sagas/order-sagas.js';

const MAX_WAIT_S = 30;
const PRODUCT_ID = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';
const CreateBody = Type.Object(
  {
    items: Type.Array(
      Type.Object({ productId: Type.String({ pattern: PRODUCT_ID }), quantity: Type.Integer({ minimum: 1, maximum: 10_000 }) }, { additionalProperties: false }),
      { minItems: 1, maxItems: 100 },
    ),
  },
  { additionalProperties: false },
);
/** How often a cancel reads the placing saga again while another instance drives it. */
const PLACING_POLL_MS = 100;
/** A bound on those reads, whatever the wait asked for (Prefer: wait is capped anyway). */
const MAX_PLACING_READS = 600;
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._:-]+$' }) }, { additionalProperties: false });
const ListQuery = Type.Object(
  { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })), cursor: Type.Optional(Type.String({ maxLength: 200 })), userId: Type.Optional(Type.String({ maxLength: 64 })) },
  { additionalProperties: false },
);
const SagaQuery = Type.Object(
  {
    status: Type.Optional(Type.Union([Type.Literal('RUNNING'), Type.Literal('COMPENSATING'), Type.Literal('COMPLETED'), Type.Literal('COMPENSATED'), Type.Literal('NEEDS_ATTENTION')])),
    type: Type.Optional(Type.String({ maxLength: 64 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  },
  { additionalProperties: false },
);

type Config = {
  defaultWaitS: number;
  idempotencyRetentionMs: number;
  sagaLeaseMs: number;
  sagaStepTimeoutMs: number;
  sagaBackoffCapMs: number;
  sagaMaxAttempts: number;
  sagaMaxCompensationAttempts: number;
};

// The placement path's statements, prepared (built and compiled once; see platform's store/prepared.ts).
type Odb = Kysely<OrderDb>;
const orderById = prepared<{ id: string }, OrderDb['orders']>(['id'], (db: Odb, p) => db.selectFrom('orders').selectAll().where('id', '=', p.id));
const itemsOfOrder = prepared<{ id: string }, OrderDb['order_items']>(['id'], (db: Odb, p) => db.selectFrom('order_items').selectAll().where('order_id', '=', p.id).orderBy('line'));
const insertOrderRow = prepared<{ id: string; userId: string; total: number; now: string }>(['id', 'userId', 'total', 'now'], (db: Odb, p) =>
  db.insertInto('orders').values({ id: p.id, user_id: p.userId, status: 'PENDING', total: p.total, reason: null, created_at: p.now, updated_at: p.now, cancel_requested_at: null }),
);
/** An order's lines, one multi-row insert per line count (see preparedList). */
const insertLines = preparedList<{ orderId: string; productId: string; quantity: number; price: number }>(['orderId', 'productId', 'quantity', 'price'], (db: Odb, items) =>
  db.insertInto('order_items').values(items.map((it, line) => ({ order_id: it.orderId, line, product_id: it.productId, quantity: it.quantity, price: it.price }))),
);
async function insertItems(trx: Kysely<any>, orderId: string, lines: Line[]): Promise<void> {
  if (lines.length === 0) return;
  await insertLines.run(
    trx,
    lines.map((l) => ({ orderId, productId: l.productId, quantity: l.quantity, price: l.price })),
  );
}

export async function orderRoutes(ctx: ServiceContext<Config>): Promise<void> {
  const { app, config, mesh } = ctx;
  const store = await openServiceStore<OrderDb>(ctx, migrations);
  const db = store.db;
  const released = await releaseLocksOf(db, ctx.instanceId);
  if (released > 0) ctx.log.info({ keys: released }, 'released idempotency keys held by the previous run of this instance');
  const guard = Guard.viaMesh(mesh);
  const prices = new PriceCache(mesh);
  const relay = new OutboxRelay({ store, mesh, log: ctx.log, batchPaths: { 'recommendation /internal/events': '/internal/batch/events' } });
  const sagas = new SagaRuntime({ store, log: ctx.log, owner: ctx.instanceId, faults: ctx.faults, leaseMs: config.sagaLeaseMs, telemetry: ctx.telemetry, metrics: ctx.metrics });
  const tuning = {
    stepTimeoutMs: config.sagaStepTimeoutMs,
    retry: { baseMs: Math.min(50, config.sagaBackoffCapMs), capMs: config.sagaBackoffCapMs, maxAttempts: config.sagaMaxAttempts, maxCompensationAttempts: config.sagaMaxCompensationAttempts },
  };
  const parts = participants(mesh);
  sagas.register(placeOrderSaga(parts, tuning));
  sagas.register(cancelOrderSaga(parts, tuning));
  ctx.onClose(() => relay.close());
  ctx.onClose(() => sagas.close());
  const sweeper = setInterval(() => void sweepKeys(db, config.idempotencyRetentionMs, Date.now()).catch((err) => ctx.log.warn({ err }, 'idempotency sweep failed')), 3_600_000);
  sweeper.unref();
  ctx.onClose(() => clearInterval(sweeper));
  app.addHook('onReady', async () => {
    relay.start();
    sagas.startBackground();
  });

  async function loadOrders(ids: string[]): Promise<Map<string, Order>> {
    const out = new Map<string, Order>();
    if (ids.length === 0) return out;
    // One order (every placement reads its own back): prepared statements.
    const one = ids.length === 1 ? { id: ids[0] as string } : null;
    const rows = one ? await orderById.all(db, one) : await db.selectFrom('orders').selectAll().where('id', 'in', ids).execute();
    const items = one ? await itemsOfOrder.all(db, one) : await db.selectFrom('order_items').selectAll().where('order_id', 'in', ids).orderBy('order_id').orderBy('line').execute();
    for (const r of rows) {
      const o: Order = {
        id: r.id,
        userId: r.user_id,
        items: [],
        total: Number(r.total),
        status: r.status as OrderStatus,
        createdAt: r.created_at,
        updatedAt: r.updated_at,
      };
      if (r.reason) o.reason = r.reason;
      if (r.cancel_requested_at && r.status === 'CONFIRMED') o.cancellation = 'REQUESTED';
      out.set(r.id, o);
    }
    for (const it of items) out.get(it.order_id)?.items.push({ productId: it.product_id, quantity: it.quantity, price: Number(it.price) });
    return out;
  }

  async function loadOrder(id: string): Promise<Order | null> {
    return (await loadOrders([id])).get(id) ?? null;
  }

  function waitSeconds(header: string | string[] | undefined, reply: FastifyReply): number {
    const asked = preferWaitS(header);
    const s = Math.min(asked ?? config.defaultWaitS, MAX_WAIT_S);
    if (asked !== null) reply.header('preference-applied', `wait=${s}`);
    return s;
  }

  /** 201 with a terminal order, else 202 with Location (API.md). */
  function answer(reply: FastifyReply, order: Order): Order {
    const terminal = TERMINAL.includes(order.status);
    reply.code(terminal ? 201 : 202);
    if (!terminal) reply.header('location', `/api/orders/${order.id}`).header('retry-after', '1');
    return order;
  }

  app.post<{ Body: { items: LineIn[] } }>('/api/orders', { schema: { body: CreateBody } }, async (req, reply) => {
    const me = await guard.user(req);
    const key = idempotencyKeyOf(req.headers['idempotency-key']);
    const dup = duplicateProducts(req.body.items);
    if (dup.length > 0) throw badRequest(dup);
    const waitS = waitSeconds(req.headers.prefer, reply);
    const fingerprint = requestFingerprint('POST', '/api/orders', req.body);

    let priced: Map<string, number>;
    try {
      priced = await prices.get(req.body.items.map((i) => i.productId), req.trace?.ctx);
    } catch (err) {
      if (err instanceof UpstreamError) throw new HttpError(503, 'inventory-unavailable', 'the product catalogue cannot be reached; nothing was written, retry later', {}, { 'retry-after': '1' });
      throw err;
    }
    const { lines, errors, total } = priceLines(req.body.items, priced);
    if (errors.length > 0) throw new HttpError(422, 'unknown-product', errors[0]!.message, { errors });

    // Time-ordered: the order, its saga and the saga's log go onto their tables' newest pages.
    const orderId = timeOrderedId();
    const now = new Date().toISOString();
    // Group commit: concurrent order creations share one transaction (each in its savepoint).
    const claim = await store.group(async (trx) => {
      const c = await claimKey(trx, { userId: me.userId, key, fingerprint, resourceId: orderId, lockMs: (waitS + 10) * 1000, nowMs: Date.now(), owner: ctx.instanceId });
      if (c.kind === 'replay') return c;
      await insertOrder(trx, orderId, me.userId, lines, total, now);
      const data: PlaceOrderData = { orderId, userId: me.userId, items: lines, total };
      await sagas.create(trx, 'place-order', orderId, data, req.trace?.ctx);
      return c;
    }, req.trace?.ctx);
    if (claim.kind === 'replay') {
      const existing = await loadOrder(claim.resourceId);
      if (!existing) throw new HttpError(500, 'internal', 'an idempotency key points to a missing order');
      reply.header('idempotent-replayed', 'true');
      return answer(reply, existing);
    }
    sagas.start(orderId, req.trace?.ctx);
    if (waitS > 0) await sagas.waitFor(orderId, waitS * 1000);
    const order = (await loadOrder(orderId)) as Order;
    const body = answer(reply, order);
    const status = reply.statusCode;
    await store.group((trx) => completeKey(trx, me.userId, key, status, { orderId }), req.trace?.ctx);
    return body;
  });

  async function insertOrder(trx: Kysely<any>, id: string, userId: string, lines: Line[], total: number, now: string): Promise<void> {
    await insertOrderRow.run(trx, { id, userId, total, now });
    await insertItems(trx, id, lines);
  }

  app.get<{ Params: { id: string } }>('/api/orders/:id', { schema: { params: IdParams } }, async (req) => {
    const me = await guard.user(req);
    const order = await loadOrder(req.params.id);
    if (!order || (me.role !== 'admin' && order.userId !== me.userId)) throw new HttpError(404, 'not-found', 'no such order');
    return order;
  });

  async function listOrders(userId: string, limit: number, cursorText: string | undefined): Promise<{ items: Order[]; nextCursor: string | null }> {
    let cursor: Cursor | null = null;
    if (cursorText !== undefined) {
      cursor = decodeCursor(cursorText);
      if (!cursor) throw badRequest([{ path: '/query/cursor', message: 'is not a cursor returned by this API' }]);
    }
    let q = db.selectFrom('orders').select(['id', 'created_at']).where('user_id', '=', userId);
    if (cursor) {
      const c = cursor;
      q = q.where((eb) => eb.or([eb('created_at', '<', c.createdAt), eb.and([eb('created_at', '=', c.createdAt), eb('id', '<', c.id)])]));
    }
    const rows = await q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit + 1).execute();
    const page = rows.slice(0, limit);
    const byId = await loadOrders(page.map((r) => r.id));
    const last = page.at(-1);
    return { items: page.map((r) => byId.get(r.id)).filter((o): o is Order => !!o), nextCursor: rows.length > limit && last ? encodeCursor({ createdAt: last.created_at, id: last.id }) : null };
  }

  app.get<{ Querystring: { limit?: number; cursor?: string; userId?: string } }>('/api/orders', { schema: { querystring: ListQuery } }, async (req) => {
    const me = await guard.user(req);
    let userId = me.userId;
    if (req.query.userId !== undefined && req.query.userId !== me.userId) {
      if (me.role !== 'admin') throw new HttpError(403, 'forbidden', 'only an admin may list the orders of another user');
      userId = req.query.userId;
    }
    return listOrders(userId, req.query.limit ?? 20, req.query.cursor);
  });

  // For the gateway's dashboard aggregation (it has already authorised the caller).
  app.get<{ Querystring: { limit?: number; userId?: string } }>('/internal/orders', { schema: { querystring: ListQuery } }, async (req) => {
    if (!req.query.userId) throw badRequest([{ path: '/query/userId', message: 'is required' }]);
    return listOrders(req.query.userId, req.query.limit ?? 5, undefined);
  });

  /**
   * The place-order saga of an order, once COMPLETED or when `deadlineMs` passes (then as it is).
   * Driven here, its end wakes this at once; driven by another instance (or being recovered), it
   * is read again every PLACING_POLL_MS.
   */
  async function placingSettled(orderId: string, deadlineMs: number) {
    for (let reads = 0; ; reads++) {
      const saga = await sagas.get(orderId);
      const leftMs = deadlineMs - Date.now();
      if (!saga || saga.status === 'COMPLETED' || leftMs <= 0 || reads >= MAX_PLACING_READS) return saga;
      if (!(await sagas.waitFor(orderId, leftMs))) await new Promise((r) => setTimeout(r, Math.min(PLACING_POLL_MS, leftMs)));
    }
  }

  app.post<{ Params: { id: string } }>('/api/orders/:id/cancel', { schema: { params: IdParams } }, async (req, reply) => {
    const me = await guard.user(req);
    const key = idempotencyKeyOf(req.headers['idempotency-key']);
    const waitS = waitSeconds(req.headers.prefer, reply);
    const orderId = req.params.id;
    const found = await loadOrder(orderId);
    if (!found || (me.role !== 'admin' && found.userId !== me.userId)) throw new HttpError(404, 'not-found', 'no such order');
    const fingerprint = requestFingerprint('POST', `/api/orders/${orderId}/cancel`, null);
    const sagaId = `cancel-${orderId}`;
    // One deadline for the whole cancel: the wait for the placing saga and for the cancel's own.
    const deadlineMs = Date.now() + waitS * 1000;
    // Read before the transaction (a saga never leaves COMPLETED, so the answer cannot go stale).
    // A confirmed order's saga may still be awarding its points (an order is answered once it is
    // confirmed): a cancel right after waits for it here, within the caller's wait, not a 409.
    const placing = found.status === 'CONFIRMED' ? await placingSettled(orderId, deadlineMs) : null;
    const outcome = await store.tx(async (trx) => {
      const t = trx as Kysely<OrderDb>;
      const c = await claimKey(trx, { userId: me.userId, key, fingerprint, resourceId: orderId, lockMs: (waitS + 10) * 1000, nowMs: Date.now(), owner: ctx.instanceId });
      if (c.kind === 'replay') return 'replay' as const;
      const row = await t.selectFrom('orders').select(['status', 'cancel_requested_at']).where('id', '=', orderId).executeTakeFirstOrThrow();
      if (row.status === 'FAILED' || row.status === 'CANCELLED') return 'already' as const;
      if (row.status === 'PENDING') {
        throw new HttpError(409, 'order-pending', 'the order is still being processed; cancel it once it is CONFIRMED', {}, { 'retry-after': '1' });
      }
      if (placing && placing.status !== 'COMPLETED') {
        throw new HttpError(409, 'order-settling', `the order's saga is ${placing.status}; cancel it once it has completed`, {}, { 'retry-after': '1' });
      }
      if (row.cancel_requested_at) return 'running' as const;
      const order = (await loadOrdersIn(t, orderId)) as Order;
      await t.updateTable('orders').set({ cancel_requested_at: new Date().toISOString() }).where('id', '=', orderId).execute();
      const data: CancelOrderData = { orderId, userId: order.userId, items: order.items, total: order.total, by: me.role === 'admin' && me.userId !== order.userId ? 'admin' : 'user' };
      await sagas.create(trx, 'cancel-order', sagaId, data, req.trace?.ctx);
      return 'started' as const;
    }, req.trace?.ctx);
    if (outcome === 'started' || outcome === 'running') {
      sagas.start(sagaId, req.trace?.ctx);
      const leftMs = deadlineMs - Date.now();
      if (leftMs > 0) await sagas.waitFor(sagaId, leftMs);
    }
    const order = (await loadOrder(orderId)) as Order;
    if (outcome !== 'replay') await completeKey(db, me.userId, key, 200, { orderId });
    return order;
  });

  async function loadOrdersIn(t: Kysely<OrderDb>, id: string): Promise<Order | null> {
    const r = await t.selectFrom('orders').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) return null;
    const items = await t.selectFrom('order_items').selectAll().where('order_id', '=', id).orderBy('line').execute();
    return {
      id: r.id,
      userId: r.user_id,
      status: r.status as OrderStatus,
      total: Number(r.total),
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      items: items.map((i) => ({ productId: i.product_id, quantity: i.quantity, price: Number(i.price) })),
    };
  }

  // ---- admin ----

  app.get('/api/admin/orders/summary', async (req) => {
    await guard.admin(req);
    const byStatusRows = await db.selectFrom('orders').select(['status', (eb) => eb.fn.countAll<number>().as('n'), (eb) => eb.fn.sum<number>('total').as('sum')]).groupBy('status').execute();
    const byStatus: Record<string, number> = { PENDING: 0, CONFIRMED: 0, FAILED: 0, CANCELLED: 0 };
    let confirmedTotal = 0;
    for (const r of byStatusRows) {
      byStatus[r.status] = Number(r.n);
      if (r.status === 'CONFIRMED') confirmedTotal = Number(r.sum ?? 0);
    }
    const confirmed = await db.selectFrom('orders').select('total').where('status', '=', 'CONFIRMED').execute();
    const confirmedPoints = confirmed.reduce((s, r) => s + pointsFor(Number(r.total)), 0);
    const qty = await db
      .selectFrom('order_items')
      .innerJoin('orders', 'orders.id', 'order_items.order_id')
      .select(['order_items.product_id as productId', (eb) => eb.fn.sum<number>('order_items.quantity').as('q')])
      .where('orders.status', '=', 'CONFIRMED')
      .groupBy('order_items.product_id')
      .execute();
    const sagaCounts = await sagas.counts();
    return {
      byStatus,
      confirmedTotal,
      confirmedPoints,
      confirmedQuantities: Object.fromEntries(qty.map((r) => [r.productId, Number(r.q)])),
      sagas: sagaCounts,
    };
  });

  /** Statuses of many orders at once (the audit checks what a load generator saw). */
  app.post<{ Body: { ids: string[] } }>(
    '/api/admin/orders/lookup',
    { schema: { body: Type.Object({ ids: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { minItems: 1, maxItems: 1000 }) }, { additionalProperties: false }) } },
    async (req) => {
      await guard.admin(req);
      const rows = await db.selectFrom('orders').select(['id', 'status']).where('id', 'in', [...new Set(req.body.ids)]).execute();
      return { items: rows };
    },
  );

  app.get<{ Querystring: { status?: string; type?: string; limit?: number } }>('/api/admin/sagas', { schema: { querystring: SagaQuery } }, async (req) => {
    await guard.admin(req);
    const items = await sagas.list({ status: req.query.status, type: req.query.type, limit: req.query.limit ?? 100 });
    return { items: items.map(({ id, type, status, step, attempts, error, updatedAt, createdAt, failure }) => ({ id, type, status, step, attempts, error, updatedAt, createdAt, failure })) };
  });

  app.get<{ Params: { id: string } }>('/api/admin/sagas/:id', { schema: { params: IdParams } }, async (req) => {
    await guard.admin(req);
    const s = await sagas.get(req.params.id);
    if (!s) throw new HttpError(404, 'not-found', 'no such saga');
    return s;
  });

  app.post<{ Params: { id: string } }>('/api/admin/sagas/:id/retry', { schema: { params: IdParams } }, async (req, reply) => {
    await guard.admin(req);
    const s = await sagas.get(req.params.id);
    if (!s) throw new HttpError(404, 'not-found', 'no such saga');
    if (!(await sagas.retry(req.params.id))) throw new HttpError(409, 'not-needs-attention', `the saga is ${s.status}; only NEEDS_ATTENTION sagas are retried by hand`);
    reply.code(202);
    return { id: s.id, status: 'RETRYING' };
  });
}
