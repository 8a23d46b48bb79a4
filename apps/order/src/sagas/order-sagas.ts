/**
 * The two sagas of an order.
 *
 * place-order: create order (PENDING) → reserve stock → charge wallet → confirm reservation →
 * confirm order → award points. The first four undo in reverse on failure (release, refund,
 * restock, cancel the order); from "confirm order" on, steps only go forward.
 *
 * cancel-order (a CONFIRMED order): refund → restock → revoke points → mark cancelled; all
 * forward-only, retried until they succeed.
 *
 * The order id is the saga id, the reservation id and the charge id, so every participant call
 * is keyed deterministically and applied once.
 */
import { Batcher, type MeshClient, type SagaType, batchedStepCall, enqueue, prepared } from '@concord/platform';
import type { Kysely } from 'kysely';
import { type Line, pointsFor, undoneStatus } from '../domain/order.js';
import type { OrderDb } from '../migrations.js';

export interface PlaceOrderData {
  orderId: string;
  userId: string;
  items: Line[];
  total: number;
}

export interface CancelOrderData extends PlaceOrderData {
  by: string;
}

/**
 * The participants' batch routes: concurrent sagas' calls of one kind travel together (one
 * request, one transaction on the other side), each still answered and applied on its own.
 */
export interface Participants {
  inventory: Batcher<unknown>;
  payment: Batcher<unknown>;
  points: Batcher<unknown>;
}

export function participants(mesh: MeshClient): Participants {
  return {
    inventory: new Batcher(mesh, { service: 'inventory', path: '/internal/batch/reservations' }),
    payment: new Batcher(mesh, { service: 'payment', path: '/internal/batch/payments' }),
    points: new Batcher(mesh, { service: 'points', path: '/internal/batch/points' }),
  };
}

export interface SagaTuning {
  retry: { baseMs: number; capMs: number; maxAttempts: number; maxCompensationAttempts: number };
  stepTimeoutMs: number;
}

const updateStatus = prepared<{ id: string; from: string; to: string; reason: string | null; now: string }>(['id', 'from', 'to', 'reason', 'now'], (db: Kysely<OrderDb>, p) =>
  db.updateTable('orders').set({ status: p.to, reason: p.reason, updated_at: p.now }).where('id', '=', p.id).where('status', '=', p.from),
);

async function setStatus(trx: Kysely<any>, orderId: string, from: string, to: string, reason: string | null): Promise<void> {
  await updateStatus.run(trx, { id: orderId, from, to, reason, now: new Date().toISOString() });
}

function event(type: string, d: PlaceOrderData) {
  return { id: `${d.orderId}:${type}`, type, orderId: d.orderId, userId: d.userId, items: d.items, total: d.total, at: new Date().toISOString() };
}

export function placeOrderSaga(p: Participants, tuning: SagaTuning): SagaType<PlaceOrderData> {
  const STEP_TIMEOUT_MS = tuning.stepTimeoutMs;
  return {
    type: 'place-order',
    retry: tuning.retry,
    steps: [
      {
        name: 'create-order',
        kind: 'compensatable',
        // The order row is written with the saga itself; this step only exists to be undone.
        local: async () => undefined,
        undoLocal: async (trx, ctx) => {
          const status = undoneStatus(ctx.failure);
          await setStatus(trx, ctx.data.orderId, 'PENDING', status, ctx.failure?.reason ?? 'undone');
        },
      },
      {
        name: 'reserve-stock',
        kind: 'compensatable',
        timeoutMs: STEP_TIMEOUT_MS,
        run: async ({ data, trace }) => {
          await batchedStepCall(p.inventory, 'inventory', {
            op: 'reserve',
            reservationId: data.orderId,
            orderId: data.orderId,
            items: data.items.map((i) => ({ productId: i.productId, quantity: i.quantity })),
          }, trace);
        },
        undo: async ({ data, trace }) => {
          await batchedStepCall(p.inventory, 'inventory', { op: 'release', reservationId: data.orderId }, trace);
        },
      },
      {
        name: 'charge-wallet',
        kind: 'compensatable',
        timeoutMs: STEP_TIMEOUT_MS,
        run: async ({ data, trace }) => {
          await batchedStepCall(p.payment, 'payment', { op: 'charge', chargeId: data.orderId, userId: data.userId, orderId: data.orderId, amount: data.total }, trace);
        },
        undo: async ({ data, key, trace }) => {
          await batchedStepCall(p.payment, 'payment', { op: 'refund', chargeId: data.orderId, refundId: key }, trace);
        },
      },
      {
        name: 'confirm-reservation',
        kind: 'compensatable',
        timeoutMs: STEP_TIMEOUT_MS,
        run: async ({ data, trace }) => {
          await batchedStepCall(p.inventory, 'inventory', { op: 'confirm', reservationId: data.orderId }, trace);
        },
        undo: async ({ data, trace }) => {
          // Only reached when a later compensatable step fails: put the sold units back.
          const r = await p.inventory.call({ op: 'restock', reservationId: data.orderId }, trace);
          // Never confirmed (still reserved or already released): nothing to restock here; release undoes it.
          if (r.status === 409) return;
          if (r.status < 200 || r.status >= 300) throw new Error(`inventory answered ${r.status} to restock`);
        },
      },
      {
        name: 'confirm-order',
        kind: 'retriable',
        // The order is CONFIRMED for good once this commits: its caller is answered then, while
        // the points are awarded (points are eventually consistent, like the recommendations).
        settles: true,
        local: async (trx, { data }) => {
          await setStatus(trx, data.orderId, 'PENDING', 'CONFIRMED', null);
          await enqueue(trx, { id: `${data.orderId}:order.confirmed`, destination: 'recommendation', path: '/internal/events', body: event('order.confirmed', data) });
        },
      },
      {
        name: 'award-points',
        kind: 'retriable',
        timeoutMs: STEP_TIMEOUT_MS,
        run: async ({ data, key, trace }) => {
          await batchedStepCall(p.points, 'points', { op: 'award', key, userId: data.userId, orderId: data.orderId, points: pointsFor(data.total) }, trace);
        },
      },
    ],
  };
}

export function cancelOrderSaga(p: Participants, tuning: SagaTuning): SagaType<CancelOrderData> {
  const STEP_TIMEOUT_MS = tuning.stepTimeoutMs;
  return {
    type: 'cancel-order',
    retry: tuning.retry,
    steps: [
      {
        name: 'refund-wallet',
        kind: 'retriable',
        timeoutMs: STEP_TIMEOUT_MS,
        run: async ({ data, key, trace }) => {
          await batchedStepCall(p.payment, 'payment', { op: 'refund', chargeId: data.orderId, refundId: key }, trace);
        },
      },
      {
        name: 'restock',
        kind: 'retriable',
        timeoutMs: STEP_TIMEOUT_MS,
        run: async ({ data, trace }) => {
          await batchedStepCall(p.inventory, 'inventory', { op: 'restock', reservationId: data.orderId }, trace);
        },
      },
      {
        name: 'revoke-points',
        kind: 'retriable',
        timeoutMs: STEP_TIMEOUT_MS,
        run: async ({ data, key, trace }) => {
          await batchedStepCall(p.points, 'points', { op: 'revoke', key, userId: data.userId, orderId: data.orderId, points: pointsFor(data.total) }, trace);
        },
      },
      {
        name: 'mark-cancelled',
        kind: 'retriable',
        local: async (trx, { data }) => {
          await setStatus(trx, data.orderId, 'CONFIRMED', 'CANCELLED', `cancelled by ${data.by}`);
          await enqueue(trx, { id: `${data.orderId}:order.cancelled`, destination: 'recommendation', path: '/internal/events', body: event('order.cancelled', data) });
        },
      },
    ],
  };
}
