/**
 * Transactional outbox: a message is written in the same transaction as the business change
 * that causes it, then a relay delivers it (POST to a service, at least once, with the message
 * id as Idempotency-Key) until the receiver accepts it. Receivers de-duplicate by that id.
 */
import { randomUUID } from 'node:crypto';
import { backoffDelayMs } from '@concord/core';
import type { Kysely } from 'kysely';
import { isTransientStatus, type MeshClient, UpstreamError } from '../mesh/client.js';
import type { Logger } from '../service-kit/logger.js';
import type { Migration, Store } from '../store/store.js';

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

/** Writes a message inside the caller's transaction. */
export async function enqueue(trx: Kysely<any>, msg: OutboxMessage): Promise<string> {
  const id = msg.id ?? randomUUID();
  await (trx as Kysely<OutboxTable>)
    .insertInto('outbox')
    .values({
      id,
      destination: msg.destination,
      path: msg.path,
      body: JSON.stringify(msg.body),
      created_at: new Date().toISOString(),
      attempts: 0,
      next_attempt_ms: 0,
      claimed_until_ms: 0,
      status: 'PENDING',
      last_error: null,
    })
    .execute();
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
    private readonly opts: { store: Store<any>; mesh: MeshClient; log: Logger; pollMs?: number; random?: () => number },
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
      const due = await this.db
        .selectFrom('outbox')
        .selectAll()
        .where('status', '=', 'PENDING')
        .where('next_attempt_ms', '<=', now)
        .where('claimed_until_ms', '<', now)
        .orderBy('created_at')
        .limit(BATCH)
        .execute();
      more = due.length === BATCH;
      await Promise.all(due.map((m) => this.deliver(m, now)));
    } catch (err) {
      this.opts.log.warn({ err }, 'outbox relay pass failed');
    } finally {
      this.running = false;
      const again = this.again || more;
      this.again = false;
      this.schedule(again ? 0 : (this.opts.pollMs ?? 500));
    }
  }

  private async deliver(m: OutboxTable['outbox'], now: number): Promise<void> {
    const claimed = await this.db
      .updateTable('outbox')
      .set({ claimed_until_ms: now + CLAIM_MS })
      .where('id', '=', m.id)
      .where('claimed_until_ms', '<', now)
      .executeTakeFirst();
    if (Number(claimed.numUpdatedRows) !== 1) return; // another instance has it
    let error: string;
    let final = false;
    try {
      const r = await this.opts.mesh.request(m.destination, {
        method: 'POST',
        path: m.path,
        body: JSON.parse(m.body),
        headers: { 'idempotency-key': m.id },
        timeoutMs: 5000,
      });
      if (r.status >= 200 && r.status < 300) {
        await this.db.deleteFrom('outbox').where('id', '=', m.id).execute();
        return;
      }
      error = `HTTP ${r.status}: ${JSON.stringify(r.body).slice(0, 500)}`;
      final = !isTransientStatus(r.status);
    } catch (err) {
      error = err instanceof UpstreamError ? err.message : String(err);
    }
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
        next_attempt_ms: Date.now() + backoffDelayMs({ ...BACKOFF, equalJitter: true }, attempts, this.opts.random ?? Math.random),
      })
      .where('id', '=', m.id)
      .execute();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
