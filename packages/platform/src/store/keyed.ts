/**
 * Helpers for keyed (idempotent) writes that behave the same on every engine.
 */
import type { Kysely } from 'kysely';
import { type Store, isUniqueViolation } from './store.js';

/**
 * Runs a write transaction that inserts a row under a caller-chosen key (a charge id, an event
 * key, …) after checking whether that key exists. On SQLite write transactions are serialized
 * (BEGIN IMMEDIATE), so a second request with the same key always sees the first one's row.
 * On PostgreSQL and MySQL (read committed) two concurrent requests can both miss the row and
 * race to insert it: the loser's unique violation rolls its transaction back, and running it
 * once more sees the winner's row, so it answers as a replay instead of failing.
 */
export async function keyedTx<DB, T>(store: Store<DB>, fn: (trx: Kysely<DB>) => Promise<T>): Promise<T> {
  try {
    return await store.tx(fn);
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    return store.tx(fn);
  }
}

/**
 * An integer read from the database as a JS number. PostgreSQL hands `bigint` columns and
 * `sum()` back as strings, MySQL sums as decimal strings; SQLite gives numbers. Anything that
 * is not an integer within the safe range is an impossible state and throws.
 */
export function dbInt(value: unknown, what: string): number {
  const n = toNumber(value);
  if (!Number.isSafeInteger(n)) throw new Error(`${what}: expected an integer from the database, got ${JSON.stringify(String(value))}`);
  return n;
}

function toNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return Number(value);
  return Number.NaN;
}
