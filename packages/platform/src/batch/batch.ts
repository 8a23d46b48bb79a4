/**
 * Batched calls between services, keeping per-item semantics. A participant exposes
 * `POST <path>` taking `{items: [...]}`: every item runs in ONE transaction, each inside its
 * own savepoint, and gets its own answer `{status, body}` — exactly what the single-item route
 * would have answered, idempotency included. A caller's `Batcher` coalesces the calls made in
 * the same tick into one request and hands each caller its own answer.
 *
 * Tracing: the batch request continues the trace of its first traced item; `traces` (the W3C
 * traceparent of each item's caller, '' for none) gives every other item a span in its own
 * trace too, so the trace of any order shows the participant's work, not only the first one's.
 *
 * What it buys: one HTTP exchange and one commit for many saga steps under load; with one
 * caller it is one item and costs what a single call costs.
 */
import type { FastifyInstance } from 'fastify';
import { type CallOptions, type MeshClient, UpstreamError } from '../mesh/client.js';
import { toProblem } from '../service-kit/server.js';
import { problem } from '../service-kit/problem.js';
import { compileValidator, fieldErrors } from '../service-kit/validation.js';
import { type Store, inSavepoint, isTransactionConflict } from '../store/store.js';
import { SpanKind, trace } from '@opentelemetry/api';
import { type Telemetry, type TraceContext, idsOf, traceparentOf } from '../telemetry/tracing.js';

export interface ItemResult {
  status: number;
  body: unknown;
}

export const MAX_BATCH_ITEMS = 256;
/**
 * Runs of a batch's transaction when the database aborts it for a deadlock (MySQL does when two
 * batches lock the same rows in different orders): each run starts over with every item.
 */
const MAX_TX_RUNS = 4;

/**
 * On PostgreSQL and MySQL a process runs its batch transactions one at a time. Two batches that
 * run at once lock the same rows (a product's stock, a wallet) in the orders their items come in,
 * and deadlock; PostgreSQL notices after its deadlock_timeout (1 s), holding both connections
 * meanwhile. Flat out at 64 connections on PostgreSQL the order flow fell to ~2.5 orders/s that
 * way, with the service's other requests queued behind the pool. A batch already carries every
 * item that arrived while the previous one ran. SQLite serializes writers itself.
 */
const batchQueues = new WeakMap<object, Promise<unknown>>();
function oneAtATime<T>(key: object, fn: () => Promise<T>): Promise<T> {
  const run = (batchQueues.get(key) ?? Promise.resolve()).then(fn, fn);
  batchQueues.set(
    key,
    run.then(
      () => undefined,
      () => undefined,
    ),
  );
  return run;
}

/**
 * Registers a batch route whose items are handled by `handle` inside one transaction. Items are
 * validated one by one against `itemSchema` (a bad item gets its own 400; the others proceed).
 * `handle` receives the store bound to the batch transaction (see Store.bound).
 */
export function batchRoute<DB, I>(
  app: FastifyInstance,
  opts: { path: string; itemSchema: object; store: Store<DB>; handle: (store: Store<DB>, item: I, nowMs: number) => Promise<ItemResult> },
): void {
  const validate = compileValidator(opts.itemSchema, 'body');
  app.post<{ Body: { items: unknown[]; traces?: string[] } }>(
    opts.path,
    {
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['items'],
          properties: {
            items: { type: 'array', minItems: 1, maxItems: MAX_BATCH_ITEMS, items: { type: 'object' } },
            traces: { type: 'array', maxItems: MAX_BATCH_ITEMS, items: { type: 'string', maxLength: 64 } },
          },
        },
      },
    },
    async (req) => {
      const now = Date.now();
      const tel = opts.store.telemetry?.enabled ? opts.store.telemetry : null;
      const batchTraceId = req.trace ? idsOf(req.trace.ctx)?.traceId : undefined;
      const runOnce = () =>
        opts.store.tx(async (trx) => {
          const results: ItemResult[] = [];
          const bound = opts.store.bound(trx);
          for (const [i, item] of req.body.items.entries()) {
            if (!validate(item)) {
              const errors = fieldErrors(validate.errors, 'body');
              results.push({ status: 400, body: problem(400, 'validation', errors[0] ? `${errors[0].path} ${errors[0].message}` : 'invalid item', { errors }) });
              continue;
            }
            const run = () => opts.handle(bound, item as I, now);
            const parent = itemParent(tel, req.body.traces?.[i], batchTraceId);
            // An item that throws is undone alone. When the database ended the whole transaction
            // (MySQL on a deadlock), the items before it are gone too: the batch fails with that
            // error and runs again below, or its caller retries it.
            const o = await inSavepoint(trx, 'concord_item', () =>
              parent ? (tel as Telemetry).inSpan(`${opts.path} item`, SpanKind.INTERNAL, run, { 'concord.batch.size': req.body.items.length, 'concord.batch.trace_id': batchTraceId ?? '' }, parent) : run(),
            );
            if (o.ok) {
              results.push(o.value);
              continue;
            }
            const err = o.error;
            const p = toProblem(err);
            // A deadlock the database broke by aborting this item (PostgreSQL keeps the rest of the
            // transaction) is expected under contention: the item answers 503 and is retried.
            if (isTransactionConflict(err)) req.log.warn({ err: (err as Error).message }, 'batch item aborted by the database for a concurrent transaction');
            else if (p.status >= 500) req.log.error({ err }, 'batch item failed');
            results.push({ status: p.status, body: p });
          }
          return results;
        }, req.trace?.ctx);
      let results: ItemResult[];
      for (let run = 1; ; run++) {
        try {
          results = await (opts.store.dialect === 'sqlite' ? runOnce() : oneAtATime(opts.store, runOnce));
          break;
        } catch (err) {
          if (run >= MAX_TX_RUNS || !isTransactionConflict(err)) throw err;
          req.log.warn({ err: (err as Error).message, run }, 'batch transaction aborted by the database; running it again');
        }
      }
      return { results };
    },
  );
}

/**
 * The parent of an item's span: the item caller's context when the item belongs to another
 * trace than the batch request; null when the item has no trace or is of the batch's own trace
 * (the item that opened it), whose work already shows under the batch request's span — a batch
 * of one, the common case at low load, then costs no extra span.
 */
function itemParent(tel: Telemetry | null, traceparent: string | undefined, batchTraceId: string | undefined): TraceContext | null {
  if (!tel || !traceparent) return null;
  const ctx = tel.extract({ traceparent });
  const sc = trace.getSpanContext(ctx);
  if (!sc || sc.traceId === batchTraceId) return null;
  return ctx;
}

interface Pending {
  item: unknown;
  trace: TraceContext | null;
  resolve: (r: ItemResult) => void;
  reject: (e: unknown) => void;
}

/** Coalesces single calls into batch requests to one service's batch route. */
export class Batcher<I> {
  private queue: Pending[] = [];
  private scheduled = false;

  constructor(
    private readonly mesh: Pick<MeshClient, 'request'>,
    private readonly target: { service: string; path: string; timeoutMs?: number; maxItems?: number },
  ) {}

  /** `trace`: the caller's trace context; the batch request continues the first traced item's. */
  call(item: I, trace: TraceContext | null = null): Promise<ItemResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, trace, resolve, reject });
      if (this.queue.length >= (this.target.maxItems ?? 128)) void this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    const batch = this.queue.splice(0, this.target.maxItems ?? 128);
    if (this.queue.length > 0 && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => void this.flush());
    }
    if (batch.length === 0) return;
    try {
      const first = batch.find((p) => p.trace)?.trace ?? null;
      const body: { items: unknown[]; traces?: string[] } = { items: batch.map((p) => p.item) };
      if (first) body.traces = batch.map((p) => (p.trace ? (traceparentOf(p.trace) ?? '') : ''));
      const call: CallOptions = { method: 'POST', path: this.target.path, body, timeoutMs: this.target.timeoutMs ?? 5000, trace: first };
      const r = await this.mesh.request<{ results?: ItemResult[] }>(this.target.service, call);
      const results = r.body?.results;
      if (r.status !== 200 || !Array.isArray(results) || results.length !== batch.length) {
        // The whole batch failed (overload, a bad deploy): each caller sees it as its own answer.
        const detail = typeof r.body === 'object' && r.body && 'detail' in r.body ? String((r.body as { detail: unknown }).detail) : '';
        for (const p of batch) p.resolve({ status: r.status === 200 ? 502 : r.status, body: { detail: detail || `${this.target.service} answered the batch with ${r.status}` } });
        return;
      }
      for (const [i, p] of batch.entries()) p.resolve(results[i] as ItemResult);
    } catch (err) {
      for (const p of batch) p.reject(err instanceof UpstreamError ? err : new UpstreamError(this.target.service, 'reset', String(err)));
    }
  }
}
