/**
 * The payment service's HTTP surface. Internal routes are called by other services (the user
 * service's outbox, the order saga, the gateway's dashboard); /api routes by users through
 * the gateway.
 */
import { type Guard, type Store, batchRoute, notFound } from '@concord/platform';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ID_MAX_CHARS, ID_PATTERN, MAX_AMOUNT_CENTS } from './domain/limits.js';
import type { PaymentDb } from './db.js';
import type { Payments } from './payments.js';

const Id = Type.String({ minLength: 1, maxLength: ID_MAX_CHARS, pattern: ID_PATTERN });

const WalletBody = Type.Object({ userId: Id }, { additionalProperties: false });
const ChargeBody = Type.Object(
  { chargeId: Id, userId: Id, orderId: Id, amount: Type.Integer({ minimum: 1, maximum: MAX_AMOUNT_CENTS }) },
  { additionalProperties: false },
);
const RefundBody = Type.Object(
  { refundId: Id, amount: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_AMOUNT_CENTS })) },
  { additionalProperties: false },
);
const ChargeParams = Type.Object({ id: Id }, { additionalProperties: false });
/** One item of POST /internal/batch/payments: a charge or a refund, each as its single route. */
const BatchItem = Type.Union([
  Type.Object({ op: Type.Literal('charge'), ...ChargeBody.properties }, { additionalProperties: false }),
  Type.Object({ op: Type.Literal('refund'), chargeId: Id, ...RefundBody.properties }, { additionalProperties: false }),
]);
type BatchItem = Static<typeof BatchItem>;
const UserParams = Type.Object({ userId: Id }, { additionalProperties: false });

export function paymentRoutes(app: FastifyInstance, payments: Payments, guard: Pick<Guard, 'user' | 'admin'>, store: Store<PaymentDb>): void {
  // Many charges and refunds in one request and one transaction (the order saga batches them).
  batchRoute<PaymentDb, BatchItem>(app, {
    path: '/internal/batch/payments',
    itemSchema: BatchItem,
    store,
    handle: async (bound, item) => {
      const p = payments.withStore(bound);
      if (item.op === 'charge') {
        const { view, created } = await p.charge({ chargeId: item.chargeId, userId: item.userId, orderId: item.orderId, amount: item.amount });
        return { status: created ? 201 : 200, body: view };
      }
      return { status: 200, body: await p.refund({ chargeId: item.chargeId, refundId: item.refundId, amount: item.amount }) };
    },
  });

  app.post<{ Body: Static<typeof WalletBody> }>('/internal/wallets', { schema: { body: WalletBody } }, async (req, reply) => {
    const { wallet, created } = await payments.ensureWallet(req.body.userId);
    reply.code(created ? 201 : 200);
    return wallet;
  });

  app.get<{ Params: Static<typeof UserParams> }>('/internal/wallets/:userId', { schema: { params: UserParams } }, async (req) => {
    const wallet = await payments.findWallet(req.params.userId);
    if (!wallet) throw notFound(`no wallet for user ${req.params.userId}`);
    return wallet;
  });

  app.post<{ Body: Static<typeof ChargeBody> }>('/internal/charges', { schema: { body: ChargeBody } }, async (req, reply) => {
    const { view, created } = await payments.charge(req.body);
    reply.code(created ? 201 : 200);
    return view;
  });

  app.get<{ Params: Static<typeof ChargeParams> }>('/internal/charges/:id', { schema: { params: ChargeParams } }, async (req) => {
    const charge = await payments.findCharge(req.params.id);
    if (!charge) throw notFound(`no charge ${req.params.id}`);
    return charge;
  });

  app.post<{ Params: Static<typeof ChargeParams>; Body: Static<typeof RefundBody> }>(
    '/internal/charges/:id/refund',
    { schema: { params: ChargeParams, body: RefundBody } },
    async (req) => payments.refund({ chargeId: req.params.id, refundId: req.body.refundId, amount: req.body.amount }),
  );

  app.get('/api/wallet', async (req) => {
    const { userId } = await guard.user(req);
    return payments.walletOf(userId);
  });

  app.get('/api/admin/payments/summary', async (req) => {
    await guard.admin(req);
    return payments.summary();
  });
}
