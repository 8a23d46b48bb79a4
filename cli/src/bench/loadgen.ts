/**
 * The load generator behind `concord bench` and `concord chaos`: places orders through the
 * gateway, flat out (closed model: each connection sends as soon as the last answer came) or
 * at a fixed arrival rate (open model: request i is due at t0 + i/rate and its latency counts
 * from then, so a stalled server cannot hide latency — no coordinated omission).
 */
import { randomUUID } from 'node:crypto';
import { Histogram } from '@concord/core';
import { Pool } from 'undici';

export interface LoadUser {
  id: string;
  token: string;
}

export interface LoadOptions {
  gatewayUrl: string;
  /** Several gateways: requests go round robin, and a failed try moves to the next one. */
  gatewayUrls?: string[];
  /**
   * Tries per order when the answer is a connection failure or 502/503/504: clients retry with
   * the same Idempotency-Key, which is what makes retrying safe. Default 1 (no retry).
   */
  maxTries?: number;
  /** Share of confirmed orders the generator cancels right away (exercises the cancel saga). */
  cancelRatio?: number;
  users: LoadUser[];
  productIds: string[];
  durationMs: number;
  /** Orders per second; 0 = flat out. */
  ratePerS: number;
  connections: number;
  /** Prefer: wait=<s> on each order (API default 5). */
  waitS?: number;
  /** Called once a second with the last second's figures. */
  onTick?: (t: Tick) => void;
  random?: () => number;
  /** Stops early (chaos uses it to end the load with the faults). */
  signal?: AbortSignal;
}

export interface Tick {
  second: number;
  /** Answered orders in this second (any status). */
  completed: number;
  acknowledged: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  inFlight: number;
  elapsedMs: number;
  total: { completed: number; acknowledged: number; errors: number };
}

export interface LoadResult {
  startedAt: string;
  durationMs: number;
  ratePerS: number;
  connections: number;
  sent: number;
  completed: number;
  acknowledged: number;
  errors: number;
  /** Requests the generator could not even queue (its own bound); counted as errors too. */
  dropped: number;
  statuses: Record<string, number>;
  orderStatuses: Record<string, number>;
  latency: { p50Ms: number; p90Ms: number; p99Ms: number; p999Ms: number; maxMs: number; meanMs: number };
  ticks: Tick[];
  record: { acknowledged: string[]; seenConfirmed: string[]; cancelled: string[] };
  /** Tries repeated with the same Idempotency-Key after a failure. */
  retried: number;
  errorSamples: string[];
}

const MAX_ERROR_SAMPLES = 20;
/**
 * The open model's schedule: order k (from 0) is due `k / rate` seconds after the start, so the
 * first one at once. How many are due `elapsedMs` into the run. (Counting one interval late
 * would add a whole interval to every latency: 200 ms at 5 orders/s.)
 */
export function dueByMs(elapsedMs: number, ratePerS: number): number {
  return elapsedMs < 0 ? 0 : Math.floor((elapsedMs / 1000) * ratePerS) + 1;
}

/** When order k is due, in ms after the start; latency is measured from here, not from its send. */
export function intendedOffsetMs(k: number, ratePerS: number): number {
  return (k / ratePerS) * 1000;
}

/** An order the generator places: 1 to MAX_LINES distinct products, each 1 to MAX_QUANTITY units (uniformly). */
export const MAX_LINES = 3;
export const MAX_QUANTITY = 2;

/** What the generator's orders cost on average, in cents, over products priced `pricesCents`. */
export function meanOrderCents(pricesCents: readonly number[]): number {
  if (pricesCents.length === 0) return 0;
  const meanPrice = pricesCents.reduce((a, b) => a + b, 0) / pricesCents.length;
  let lines = 0;
  for (let l = 1; l <= MAX_LINES; l++) lines += Math.min(l, pricesCents.length) / MAX_LINES;
  return lines * ((1 + MAX_QUANTITY) / 2) * meanPrice;
}

/** How long one order may keep being retried. */
const RETRY_BUDGET_MS = 30_000;
const QUEUE_PER_CONNECTION = 64;

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const random = o.random ?? Math.random;
  const urls = o.gatewayUrls && o.gatewayUrls.length > 0 ? o.gatewayUrls : [o.gatewayUrl];
  const pools = urls.map((u) => new Pool(u, { connections: Math.max(1, Math.ceil(o.connections / urls.length)), pipelining: 1, keepAliveTimeout: 30_000, headersTimeout: 60_000, bodyTimeout: 60_000 }));
  const maxTries = Math.max(1, o.maxTries ?? 1);
  const cancelled: string[] = [];
  let retried = 0;
  let nextPool = 0;
  const total = new Histogram();
  let second = new Histogram();
  const statuses: Record<string, number> = {};
  const orderStatuses: Record<string, number> = {};
  const acknowledged: string[] = [];
  const seenConfirmed: string[] = [];
  const errorSamples: string[] = [];
  const ticks: Tick[] = [];
  let sent = 0;
  let completed = 0;
  let acked = 0;
  let errors = 0;
  let dropped = 0;
  let inFlight = 0;
  let secCompleted = 0;
  let secAcked = 0;
  let secErrors = 0;
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  const end = t0 + o.durationMs;
  const maxOutstanding = o.connections * QUEUE_PER_CONNECTION;

  const body = () => {
    const lines = 1 + Math.floor(random() * MAX_LINES);
    const picks = new Set<string>();
    while (picks.size < Math.min(lines, o.productIds.length)) picks.add(o.productIds[Math.floor(random() * o.productIds.length)] as string);
    return JSON.stringify({ items: [...picks].map((productId) => ({ productId, quantity: 1 + Math.floor(random() * MAX_QUANTITY) })) });
  };

  /**
   * One POST (an order, or a cancel when there is no payload), retried with its key on connection
   * failures and 409/429/502/503/504, honouring Retry-After (capped) — what a careful client
   * does; the key makes every retry safe.
   */
  const attempt = async (user: LoadUser, key: string, path: string, payload: string | null): Promise<{ statusCode: number; text: string }> => {
    let last: Error | null = null;
    const giveUpAt = performance.now() + RETRY_BUDGET_MS;
    for (let t = 1; t <= maxTries; t++) {
      const pool = pools[nextPool++ % pools.length] as Pool;
      let waitMs = 50 * t + Math.floor(random() * 100);
      try {
        const res = await pool.request({
          path,
          method: 'POST',
          headers: {
            ...(payload !== null ? { 'content-type': 'application/json' } : {}),
            authorization: `Bearer ${user.token}`,
            'idempotency-key': key,
            ...(o.waitS !== undefined ? { prefer: `wait=${o.waitS}` } : {}),
          },
          body: payload ?? undefined,
        });
        const text = await res.body.text();
        // 409: the first try with this key is still being answered (it reached the server).
        const retriable = [409, 429, 502, 503, 504].includes(res.statusCode);
        if (!retriable || t === maxTries || performance.now() > giveUpAt) return { statusCode: res.statusCode, text };
        const after = Number(res.headers['retry-after']);
        if (Number.isFinite(after) && after > 0) waitMs = Math.min(2000, after * 1000);
      } catch (err) {
        last = err as Error;
        if (t === maxTries || performance.now() > giveUpAt) throw err;
      }
      retried++;
      await new Promise((r) => setTimeout(r, waitMs));
    }
    throw last ?? new Error('no try made');
  };

  /**
   * A cancel, retried with one key like an order. Whatever the answer, once the request may have
   * reached the server the order may end CANCELLED: a 200, but also a connection cut after the
   * server committed, or a 5xx after it started the cancel saga. Only a definite refusal (4xx
   * other than 409/429) leaves it certainly CONFIRMED, so everything else is recorded.
   */
  const cancel = async (user: LoadUser, id: string): Promise<void> => {
    try {
      const res = await attempt(user, randomUUID(), `/api/orders/${id}/cancel`, null);
      if (res.statusCode >= 400 && res.statusCode < 500 && res.statusCode !== 409 && res.statusCode !== 429) return;
    } catch {
      /* outcome unknown: it may have been applied */
    }
    cancelled.push(id);
  };

  const fire = async (intendedAt: number): Promise<void> => {
    const user = o.users[sent % o.users.length] as LoadUser;
    sent++;
    inFlight++;
    try {
      const res = await attempt(user, randomUUID(), '/api/orders', body());
      const text = res.text;
      const code = String(res.statusCode);
      statuses[code] = (statuses[code] ?? 0) + 1;
      if (res.statusCode === 201 || res.statusCode === 202) {
        const order = JSON.parse(text) as { id: string; status: string };
        acknowledged.push(order.id);
        orderStatuses[order.status] = (orderStatuses[order.status] ?? 0) + 1;
        if (order.status === 'CONFIRMED') {
          seenConfirmed.push(order.id);
          if (o.cancelRatio && random() < o.cancelRatio) await cancel(user, order.id);
        }
        acked++;
        secAcked++;
      } else {
        errors++;
        secErrors++;
        if (errorSamples.length < MAX_ERROR_SAMPLES) errorSamples.push(`${code}: ${text.slice(0, 200)}`);
      }
    } catch (err) {
      errors++;
      secErrors++;
      statuses.network = (statuses.network ?? 0) + 1;
      if (errorSamples.length < MAX_ERROR_SAMPLES) errorSamples.push(`network: ${(err as Error).message}`);
    } finally {
      inFlight--;
      completed++;
      secCompleted++;
      const us = (performance.now() - intendedAt) * 1000;
      total.record(us);
      second.record(us);
    }
  };

  let tickNo = 0;
  const tickTimer = setInterval(() => {
    tickNo++;
    const t: Tick = {
      second: tickNo,
      completed: secCompleted,
      acknowledged: secAcked,
      errors: secErrors,
      p50Ms: second.quantile(0.5) / 1000,
      p99Ms: second.quantile(0.99) / 1000,
      inFlight,
      elapsedMs: performance.now() - t0,
      total: { completed, acknowledged: acked, errors },
    };
    ticks.push(t);
    o.onTick?.(t);
    second = new Histogram();
    secCompleted = 0;
    secAcked = 0;
    secErrors = 0;
  }, 1000);

  const pending = new Set<Promise<void>>();
  const launch = (intendedAt: number) => {
    const p = fire(intendedAt).finally(() => pending.delete(p));
    pending.add(p);
  };

  if (o.ratePerS > 0) {
    // Open model: issue what is due, every millisecond or so.
    let issued = 0;
    while (performance.now() < end && !o.signal?.aborted) {
      const now = performance.now();
      const due = dueByMs(now - t0, o.ratePerS);
      while (issued < due) {
        const intendedAt = t0 + intendedOffsetMs(issued, o.ratePerS);
        issued++;
        if (pending.size >= maxOutstanding) {
          dropped++;
          errors++;
          secErrors++;
          continue;
        }
        launch(intendedAt);
      }
      await new Promise((r) => setTimeout(r, 1));
    }
  } else {
    // Closed model: each connection keeps one order in flight.
    const workers = Array.from({ length: o.connections }, async () => {
      while (performance.now() < end && !o.signal?.aborted) await fire(performance.now());
    });
    await Promise.all(workers);
  }
  await Promise.allSettled([...pending]);
  clearInterval(tickTimer);
  await Promise.all(pools.map((p) => p.close()));
  const ms = (q: number) => total.quantile(q) / 1000;
  return {
    startedAt,
    durationMs: performance.now() - t0,
    ratePerS: o.ratePerS,
    connections: o.connections,
    sent,
    completed,
    acknowledged: acked,
    errors,
    dropped,
    statuses,
    orderStatuses,
    latency: { p50Ms: ms(0.5), p90Ms: ms(0.9), p99Ms: ms(0.99), p999Ms: ms(0.999), maxMs: total.max / 1000, meanMs: total.mean() / 1000 },
    ticks,
    record: { acknowledged, seenConfirmed, cancelled },
    retried,
    errorSamples,
  };
}
