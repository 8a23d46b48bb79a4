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
import { type MeshClient, type SagaType, enqueue, stepCall } from '@concord/platform';
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

export interface SagaTuning {
  retry: { baseMs: number; capMs: number; maxAttempts: number; maxCompensationAttempts: number };
  stepTimeoutMs: number;
}

async function setStatus(trx: Kysely<any>, orderId: string, from: string, to: string, reason: string | null): Promise<void> {
  await (trx as Kysely<OrderDb>)
    .updateTable('orders')
    .set({ status: to, reason, updated_at: new Date().toISOString() })
    .where('id', '=', orderId)
    .where('status', '=', from)
    .execute();
}

function event(type: string, d: PlaceOrderData) {
  return { id: `${d.orderId}:${type}`, type, orderId: d.orderId, userId: d.userId, items: d.items, total: d.total, at: new Date().toISOString() };
}

export function placeOrderSaga(mesh: MeshClient, tuning: SagaTuning): SagaType<PlaceOrderData> {
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
        run: async ({ data, signal }) => {
          await stepCall(mesh, 'inventory', {
            method: 'POST',
            path: '/internal/reservations',
            body: { reservationId: data.orderId, orderId: data.orderId, items: data.items.map((i) => ({ productId: i.productId, quantity: i.quantity })) },
            signal,
          });
        },
        undo: async ({ data, signal }) => {
          await stepCall(mesh, 'inventory', { method: 'POST', path: `/internal/reservations/${encodeURIComponent(data.orderId)}/release`, signal });
        },
      },
      {
        name: 'charge-wallet',
        kind: 'compensatable',
        timeoutMs: STEP_TIMEOUT_MS,
        run: async ({ data, signal }) => {
          await stepCall(mesh, 'payment', { method: 'POST', path: '/internal/charges', body: { chargeId: data.orderId, userId: data.userId, orderId: data.orderId, amount: data.total }, signal });
        },
        undo: async ({ data, key, signal }) => {
          await stepCall(mesh, 'payment', { method: 'POST', path: `/internal/charges/${encodeURIComponent(data.orderId)}/refund`, body: { refundId: key }, signal });
        },
      },
      {
        name: 'confirm-reservation',
        kind: 'compensatable',
        timeoutMs: STEP_TIMEOUT_MS,
        run: async ({ data, signal }) => {
          await stepCall(mesh, 'inventory', { method: 'POST', path: `/internal/reservations/${encodeURIComponent(data.orderId)}/confirm`, signal });
        },
        undo: async ({ data, signal }) => {
          // Only reached when a later compensatable step fails: put the sold units back.
          const r = await mesh.request('inventory', { method: 'POST', path: `/internal/reservations/${encodeURIComponent(data.orderId)}/restock`, signal });
          // Never confirmed (still reserved or already released): nothing to restock here; release undoes it.
          if (r.status === 409) return;
          if (r.status < 200 || r.status >= 300) throw new Error(`inventory answered ${r.status} to restock`);
        },
      },
      {
        name: 'confirm-order',
        kind: 'retriable',
        local: async (trx, { data }) => {
          await setStatus(trx, data.orderId, 'PENDING', 'CONFIRMED', null);
          await enqueue(trx, { id: `${data.orderId}:order.confirmed`, destination: 'recommendation', path: '/internal/events', body: event('order.confirmed', data) });
        },
      },
      {
        name: 'award-points',
        kind: 'retriable',
        timeoutMs: STEP_TIMEOUT_MS,
        run: async ({ data, key, signal }) => {
          await stepCall(mesh, 'points', { method: 'POST', path: '/internal/points/award', body: { key, userId: data.userId, orderId: data.orderId, points: pointsFor(data.total) }, signal });
        },
      },
    ],
  };
}

export function cancelOrderSaga(mesh: MeshClient, tuning: SagaTuning): SagaType<CancelOrderData> {
  const STEP_TIMEOUT_MS = tuning.stepTimeoutMs;
  return {
    type: 'cancel-order',
    retry: tuning.retry,
    steps: [
      {
        name: 'refund-wallet',
        kind: 'retriable',
        timeoutMs: STEP_TIMEOUT_MS,
        run: async ({ data, key, signal }) => {
          await stepCall(mesh, 'payment', { method: 'POST', path: `/internal/charges/${encodeURIComponent(data.orderId)}/refund`, body: { refundId: key }, signal });
        },
      },
      {
        name: 'restock',
        kind: 'retriable',
        timeoutMs: STEP_TIMEOUT_MS,
        run: async ({ data, signal }) => {
          await stepCall(mesh, 'inventory', { method: 'POST', path: `/internal/reservations/${encodeURIComponent(data.orderId)}/restock`, signal });
        },
      },
      {
        name: 'revoke-points',
        kind: 'retriable',
        timeoutMs: STEP_TIMEOUT_MS,
        run: async ({ data, key, signal }) => {
          await stepCall(mesh, 'points', { method: 'POST', path: '/internal/points/revoke', body: { key, userId: data.userId, orderId: data.orderId, points: pointsFor(data.total) }, signal });
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
