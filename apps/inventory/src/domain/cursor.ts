/**
 * Opaque page cursors: base64url of the last id of the previous page. Decoding is strict
 * (canonical encoding, a well-formed id), so a tampered or foreign cursor is a 400, not a
 * silently different page.
 */
import { PRODUCT_ID_MAX_CHARS, PRODUCT_ID_PATTERN } from './limits.js';

const ID = new RegExp(PRODUCT_ID_PATTERN);
const BASE64URL = /^[A-Za-z0-9_-]+$/;
/** base64url of the longest id, rounded up. */
export const CURSOR_MAX_CHARS = Math.ceil((PRODUCT_ID_MAX_CHARS * 4) / 3) + 4;

export function encodeCursor(lastId: string): string {
  return Buffer.from(lastId, 'utf8').toString('base64url');
}

/** The id a cursor stands for, or null when it is not a cursor this service made. */
export function decodeCursor(cursor: string): string | null {
  if (cursor.length === 0 || cursor.length > CURSOR_MAX_CHARS || !BASE64URL.test(cursor)) return null;
  const id = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!ID.test(id) || encodeCursor(id) !== cursor) return null;
  return id;
}

/** Splits a page fetched with `limit + 1` rows into the page and the cursor of the next one. */
export function paginate<T>(rows: readonly T[], limit: number, idOf: (row: T) => string): { page: T[]; nextCursor: string | null } {
  if (rows.length <= limit) return { page: [...rows], nextCursor: null };
  const page = rows.slice(0, limit);
  return { page, nextCursor: encodeCursor(idOf(page[page.length - 1] as T)) };
}
