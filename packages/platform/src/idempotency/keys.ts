/**
 * Idempotency-Key with Stripe's semantics, stored durably per user: the same key with the same
 * request replays the first answer; with a different request it is 422; while the first
 * request is still being answered it is 409. Keys live at least 24 hours.
 *
 * The key row is written in the same transaction as the work it protects, so "key recorded"
 * and "work done" can never disagree after a crash. A request that crashed mid-answer holds
 * its key only until `lockedUntil`; afterwards a retry replays from the stored resource.
 */
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import { HttpError, badRequest } from '../service-kit/problem.js';
import { prepared } from '../store/prepared.js';
import type { Migration } from '../store/store.js';

export interface IdempotencyTable {
  idempotency_keys: {
    user_id: string;
    key: string;
    request_hash: string;
    status: string;
    resource_id: string;
    response_status: number | null;
    response_body: string | null;
    locked_until_ms: number;
    created_at_ms: number;
    /** The instance answering the first request (its lock dies with it). */
    locked_by: string | null;
  };
}

export function idempotencyMigration(version: number): Migration {
  return {
    version,
    name: 'idempotency keys',
    async up(db) {
      await db.schema
        .createTable('idempotency_keys')
        .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('key', 'varchar(255)', (c) => c.notNull())
        .addColumn('request_hash', 'varchar(64)', (c) => c.notNull())
        .addColumn('status', 'varchar(20)', (c) => c.notNull())
        .addColumn('resource_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('response_status', 'integer')
        .addColumn('response_body', 'text')
        .addColumn('locked_until_ms', 'bigint', (c) => c.notNull())
        .addColumn('created_at_ms', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('idempotency_keys_pk', ['user_id', 'key'])
        .execute();
      await db.schema.createIndex('idempotency_keys_age').on('idempotency_keys').column('created_at_ms').execute();
    },
  };
}

const KEY = /^[\x21-\x7e]{1,255}$/;

/** Adds the lock owner column (services that created the table before it existed). */
export function idempotencyOwnerMigration(version: number): Migration {
  return {
    version,
    name: 'idempotency key lock owner',
    async up(db) {
      await db.schema.alterTable('idempotency_keys').addColumn('locked_by', 'varchar(100)').execute();
    },
  };
}

/**
 * At start-up: the locks a previous incarnation of this instance held die with it (it can no
 * longer answer those requests), so clients retrying with those keys are not told 409 until the
 * lock would have expired.
 */
export async function releaseLocksOf(db: Kysely<any>, owner: string): Promise<number> {
  const r = await (db as Kysely<IdempotencyTable>)
    .updateTable('idempotency_keys')
    .set({ locked_until_ms: 0 })
    .where('status', '=', 'IN_PROGRESS')
    .where('locked_by', '=', owner)
    .executeTakeFirst();
  return Number(r.numUpdatedRows);
}

/** Reads and checks the Idempotency-Key header (required where this is called). */
export function idempotencyKeyOf(header: string | string[] | undefined): string {
  if (header === undefined) throw badRequest([{ path: '/headers/idempotency-key', message: 'is required (a unique string per logical request, e.g. a UUID)' }]);
  if (typeof header !== 'string' || !KEY.test(header)) {
    throw badRequest([{ path: '/headers/idempotency-key', message: 'must be 1 to 255 printable ASCII characters without spaces' }]);
  }
  return header;
}

/** A stable fingerprint of what the request asks for. */
export function requestFingerprint(method: string, path: string, body: unknown): string {
  return createHash('sha256').update(`${method} ${path}\n${canonicalJson(body)}`).digest('hex');
}

function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  return `{${Object.keys(v)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`)
    .join(',')}}`;
}

export type Claim =
  | { kind: 'new' }
  | { kind: 'replay'; resourceId: string; status: number | null; body: unknown };

// Each order claims and completes a key: these statements are prepared (store/prepared.ts).
type KeyDb = Kysely<IdempotencyTable>;
const keyRow = prepared<{ userId: string; key: string }, IdempotencyTable['idempotency_keys']>(['userId', 'key'], (db: KeyDb, p) =>
  db.selectFrom('idempotency_keys').selectAll().where('user_id', '=', p.userId).where('key', '=', p.key),
);
const insertKey = prepared<{ userId: string; key: string; hash: string; resourceId: string; lockedUntilMs: number; nowMs: number; owner: string | null }>(
  ['userId', 'key', 'hash', 'resourceId', 'lockedUntilMs', 'nowMs', 'owner'],
  (db: KeyDb, p) =>
    db.insertInto('idempotency_keys').values({
      user_id: p.userId,
      key: p.key,
      request_hash: p.hash,
      status: 'IN_PROGRESS',
      resource_id: p.resourceId,
      response_status: null,
      response_body: null,
      locked_until_ms: p.lockedUntilMs,
      created_at_ms: p.nowMs,
      locked_by: p.owner,
    }),
);
const completeRow = prepared<{ userId: string; key: string; status: number; body: string }>(['userId', 'key', 'status', 'body'], (db: KeyDb, p) =>
  db
    .updateTable('idempotency_keys')
    .set({ status: 'DONE', response_status: p.status, response_body: p.body, locked_until_ms: 0 })
    .where('user_id', '=', p.userId)
    .where('key', '=', p.key),
);

/**
 * Inside the caller's transaction: claims the key for `resourceId`, or tells how to answer a
 * repeat. Throws 422 for a different request under the same key and 409 while the first is
 * still being answered.
 */
export async function claimKey(
  trx: Kysely<any>,
  k: { userId: string; key: string; fingerprint: string; resourceId: string; lockMs: number; nowMs: number; owner?: string },
): Promise<Claim> {
  const row = await keyRow.first(trx, { userId: k.userId, key: k.key });
  if (!row) {
    await insertKey.run(trx, { userId: k.userId, key: k.key, hash: k.fingerprint, resourceId: k.resourceId, lockedUntilMs: k.nowMs + k.lockMs, nowMs: k.nowMs, owner: k.owner ?? null });
    return { kind: 'new' };
  }
  if (row.request_hash !== k.fingerprint) {
    throw new HttpError(422, 'idempotency-key-reused', 'this Idempotency-Key was used with a different request; use a new key for a new request');
  }
  if (row.status === 'IN_PROGRESS' && row.locked_until_ms > k.nowMs) {
    throw new HttpError(409, 'idempotency-key-in-use', 'a request with this Idempotency-Key is still being processed; retry shortly', {}, { 'retry-after': '1' });
  }
  return { kind: 'replay', resourceId: row.resource_id, status: row.response_status, body: row.response_body ? JSON.parse(row.response_body) : null };
}

/** Marks the key answered (after the response is decided). */
export async function completeKey(db: Kysely<any>, userId: string, key: string, status: number, body: unknown): Promise<void> {
  await completeRow.run(db, { userId, key, status, body: JSON.stringify(body) });
}

/** Deletes keys older than `maxAgeMs` (at least 24 h by contract). */
export async function sweepKeys(db: Kysely<any>, maxAgeMs: number, nowMs: number): Promise<number> {
  const r = await (db as Kysely<IdempotencyTable>).deleteFrom('idempotency_keys').where('created_at_ms', '<', nowMs - maxAgeMs).executeTakeFirst();
  return Number(r.numDeletedRows);
}
