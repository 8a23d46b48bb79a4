import { badRequest } from '@concord/platform';
import { decodeCursor } from '../domain/cursor.js';

/** The id a `cursor` query parameter stands for (null: the first page); 400 naming it otherwise. */
export function cursorParam(cursor: string | undefined): string | null {
  if (cursor === undefined) return null;
  const id = decodeCursor(cursor);
  if (id === null) throw badRequest([{ path: '/query/cursor', message: 'is not a cursor from this API; pass nextCursor of the previous page' }]);
  return id;
}
