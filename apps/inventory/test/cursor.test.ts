import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeCursor, encodeCursor, paginate } from '../src/domain/cursor.js';

test('a cursor round-trips to the id it was made from', () => {
  for (const id of ['p-0001', 'a', 'A.b_c-9', 'x'.repeat(64)]) assert.equal(decodeCursor(encodeCursor(id)), id);
});

test('malformed, foreign or tampered cursors decode to null', () => {
  for (const c of [
    '',
    'not a cursor',
    '!!!',
    'cC0wMDAx=',
    'YR' /* non-canonical 'a' */,
    Buffer.from('has space').toString('base64url'),
    Buffer.from('x'.repeat(65)).toString('base64url'),
  ]) {
    assert.equal(decodeCursor(c), null, JSON.stringify(c));
  }
});

test('a page fetched with limit + 1 rows yields a next cursor at its last row; a short page ends the list', () => {
  const rows = ['a', 'b', 'c'];
  assert.deepEqual(
    paginate(rows, 2, (r) => r),
    { page: ['a', 'b'], nextCursor: encodeCursor('b') },
  );
  assert.deepEqual(
    paginate(rows, 3, (r) => r),
    { page: rows, nextCursor: null },
  );
  assert.deepEqual(
    paginate([], 3, (r: string) => r),
    { page: [], nextCursor: null },
  );
});
