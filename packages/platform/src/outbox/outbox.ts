/**
 * Transactional outbox: a message is written in the same transaction as the business change
 * that causes it, then a relay delivers it (POST to a service, at least once, with the message
 * id as Idempotency-Key) until the receiver accepts it. Receivers de-duplicate by that id.
 */
import { timeOrderedId } from '../ids/ids.js';
import { backoffDelayMs } from '@concord/core';
import type { Kysely } from 'kysely';
import { isTransientStatus, type MeshClient, UpstreamError } from '../mesh/client.js';
import type { Logger } from '../service-kit/logger.js';
import type { Migration, Store } from '../store/store.js';
import { prepared } from '../store/prepared.js';

export interface OutboxTable {
  outbox: {
    id: string;
    destination: string;
    path: string;
    body: string;
    created_at: string;
    attempts: number;
    next_attempt_ms: number;
    claimed_until_ms: number;
    status: string;
    last_error: string | null;
  };
}

export interface OutboxMessage {
  id?: string;
  /** The receiving service. */
  destination: string;
  path: string;
  body: unknown;
}

export function outboxMigration(version: number): Migration {
  return {
    version,
    name: 'outbox',
    async up(db) {
      await db.schema
        .createTable('outbox')
        .addColumn('id', 'varchar(100)', (c) => c.primaryKey())
        .addColumn('destination', 'varchar(100)', (c) => c.notNull())
        .addColumn('path', 'varchar(300)', (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('created_at', 'varchar(40)', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('next_attempt_ms', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('claimed_until_ms', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('status', 'varchar(20)', (c) => c.notNull().defaultTo('PENDING'))
        .addColumn('last_error', 'text')
        .execute();
      await db.schema.createIndex('outbox_due').on('outbox').columns(['status', 'next_attempt_ms']).execute();
    },
  };
}

/** The insert every enqueue runs, prepared (built and compiled once; see store/prepared.ts). */
const insertMessage = prepared<{ id: string; destination: string; path: string; body: string; createdAt: string }>(
  ['id', 'destination', 'path', 'body', 'createdAt'],
  (db: Kysely<OutboxTable>, p) =>
    db.insertInto('outbox').values({
      id: p.id,
      destination: p.destination,
      path: p.path,
      body: p.body,
      created_at: p.createdAt,
      attempts: 0,
      next_attempt_ms: 0,
      claimed_until_ms: 0,
      status: 'PENDING',
      last_error: null,
    }),
);

/** Writes a message inside the caller's transaction. */
export async function enqueue(trx: Kysely<any>, msg: OutboxMessage): Promise<string> {
  const id = msg.id ?? timeOrderedId();
  await insertMessage.run(trx, { id, destination: msg.destination, path: msg.path, body: JSON.stringify(msg.body), createdAt: new Date().toISOString() });
  return id;
}

const BATCH = 64;
const CLAIM_MS = 15_000;
const MAX_ATTEMPTS_BEFORE_DEAD = 1000;
const BACKOFF = { baseMs: 100, capMs: 30_000 };

export class OutboxRelay {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private again = false;
  private closed = false;

  constructor(
    private readonly opts: {
      store: Store<any>;
      mesh: MeshClient;
      log: Logger;
      pollMs?: number;
      random?: () => number;
      /** `"<destination> <path>"` → a batch route taking `{items}` (see batch/batch.ts). */
      batchPaths?: Record<string, string>;
    },
  ) {}

  start(): void {
    this.schedule(0);
  }

  /** Delivers soon (after a commit that enqueued). */
  kick(): void {
    if (this.running) this.again = true;
    else this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.run(), ms);
    this.timer.unref();
  }

  private get db(): Kysely<OutboxTable> {
    return this.opts.store.db as Kysely<OutboxTable>;
  }

  private async run(): Promise<void> {
    if (this.running || this.closed) return;
    this.running = true;
    let more = false;
    try {
      const now = Date.now();
      // Select and claim in one transaction: with several instances, each message goes out once per claim.
      const due = await this.opts.store.tx(async (trx) => {
        const t = trx as Kysely<OutboxTable>;
        const rows = await t
          .selectFrom('outbox')
          .selectAll()
          .where('status', '=', 'PENDING')
          .where('next_attempt_ms', '<=', now)
          .where('claimed_until_ms', '<', now)
          .orderBy('created_at')
          .limit(BATCH)
          .execute();
        if (rows.length > 0) {
          await t
            .updateTable('outbox')
            .set({ claimed_until_ms: now + CLAIM_MS })
            .where(
              'id',
              'in',
              rows.map((r) => r.id),
            )
            .execute();
        }
        return rows;
      });
      more = due.length === BATCH;
      const groups = new Map<string, OutboxTable['outbox'][]>();
      for (const m of due) {
        const key = `${m.destination} ${m.path}`;
        const list = groups.get(key) ?? [];
        list.push(m);
        groups.set(key, list);
      }
      await Promise.all(
        [...groups.entries()].map(([key, msgs]) => {
          const batchPath = this.opts.batchPaths?.[key];
          return batchPath && msgs.length > 1 ? this.deliverBatch(msgs, batchPath) : Promise.all(msgs.map((m) => this.deliverOne(m)));
        }),
      );
    } catch (err) {
      // A pass still under way when the relay was closed fails on the store closed after it:
      // nothing is lost (its messages stay PENDING for the next start), so nothing to report.
      if (!this.closed) this.opts.log.warn({ err }, 'outbox relay pass failed');
    } finally {
      this.running = false;
      const again = this.again || more;
      this.again = false;
      this.schedule(again ? 0 : (this.opts.pollMs ?? 500));
    }
  }

  private async deliverOne(m: OutboxTable['outbox']): Promise<void> {
    try {
      const r = await this.opts.mesh.request(m.destination, {
        method: 'POST',
        path: m.path,
        body: JSON.parse(m.body),
        headers: { 'idempotency-key': m.id },
        timeoutMs: 5000,
      });
      if (r.status >= 200 && r.status < 300) return this.delivered([m.id]);
      await this.failed(m, `HTTP ${r.status}: ${JSON.stringify(r.body).slice(0, 500)}`, !isTransientStatus(r.status));
    } catch (err) {
      await this.failed(m, err instanceof UpstreamError ? err.message : String(err), false);
    }
  }

  private async deliverBatch(msgs: OutboxTable['outbox'][], path: string): Promise<void> {
    const destination = (msgs[0] as OutboxTable['outbox']).destination;
    try {
      const r = await this.opts.mesh.request<{ results?: Array<{ status: number; body: unknown }> }>(destination, {
        method: 'POST',
        path,
        body: { items: msgs.map((m) => JSON.parse(m.body)) },
        timeoutMs: 10_000,
      });
      const results = r.body?.results;
      if (r.status !== 200 || !Array.isArray(results) || results.length !== msgs.length) {
        for (const m of msgs) await this.failed(m, `batch HTTP ${r.status}`, false);
        return;
      }
      const ok: string[] = [];
      for (const [i, m] of msgs.entries()) {
        const res = results[i] as { status: number; body: unknown };
        if (res.status >= 200 && res.status < 300) ok.push(m.id);
        else await this.failed(m, `HTTP ${res.status}: ${JSON.stringify(res.body).slice(0, 500)}`, !isTransientStatus(res.status));
      }
      await this.delivered(ok);
    } catch (err) {
      for (const m of msgs) await this.failed(m, err instanceof UpstreamError ? err.message : String(err), false);
    }
  }

  private async delivered(ids: string[]): Promise<void> {
    if (ids.length > 0) await this.db.deleteFrom('outbox').where('id', 'in', ids).execute();
  }

  private async failed(m: OutboxTable['outbox'], error: string, final: boolean): Promise<void> {
    const attempts = m.attempts + 1;
    const dead = final || attempts >= MAX_ATTEMPTS_BEFORE_DEAD;
    if (dead) this.opts.log.error({ id: m.id, destination: m.destination, path: m.path, error }, 'outbox message refused; kept as DEAD for an operator');
    await this.db
      .updateTable('outbox')
      .set({
        attempts,
        status: dead ? 'DEAD' : 'PENDING',
        last_error: error,
        claimed_until_ms: 0,
        // Whole milliseconds: the column is a bigint, and PostgreSQL refuses a fraction (the jitter
        // makes one), which failed the whole relay pass and left the message unscheduled.
        next_attempt_ms: Date.now() + Math.round(backoffDelayMs({ ...BACKOFF, equalJitter: true }, attempts, this.opts.random ?? Math.random)),
      })
      .where('id', '=', m.id)
      .execute();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
