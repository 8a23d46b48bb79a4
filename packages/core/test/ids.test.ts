import assert from 'node:assert/strict';
import { test } from 'node:test';
import { uuid7Generator, uuid7TimeMs } from '../src/ids.js';

const UUID7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function source(times: number[], byte = 0xff) {
  let i = 0;
  return { nowMs: () => times[Math.min(i++, times.length - 1)] as number, fill: (b: Uint8Array) => b.fill(byte) };
}

test('a UUIDv7 carries its millisecond, the version 7 and the RFC variant', () => {
  const ms = Date.UTC(2026, 10, 26, 12, 0, 0, 123);
  const id = uuid7Generator(source([ms]))();
  assert.match(id, UUID7);
  assert.equal(uuid7TimeMs(id), ms);
  assert.equal(uuid7TimeMs('not-a-uuid'), null);
  assert.equal(uuid7TimeMs('6ba7b810-9dad-11d1-80b4-00c04fd430c8'), null, 'a version 1 UUID is not one');
});

test('ids sort in the order they were made: across milliseconds, within one (the counter), and when the clock steps back', () => {
  const t = 1_780_000_000_000;
  // Random bytes that decrease would break the order if the counter did not come first.
  let r = 0xff;
  const gen = uuid7Generator({ nowMs: (() => { const times = [t, t, t, t + 5, t + 2, t + 2, t + 6]; let i = 0; return () => times[i++] as number; })(), fill: (b) => b.fill(r--) });
  const ids = Array.from({ length: 7 }, () => gen());
  assert.deepEqual([...ids].sort(), ids, ids.join('\n'));
  assert.equal(new Set(ids).size, ids.length);
  assert.equal(uuid7TimeMs(ids[4] as string), t + 5, 'a clock that stepped back stays on the last millisecond used');
  for (const id of ids) assert.match(id, UUID7);
});

test('more than 4,096 ids in one millisecond borrow the next millisecond and stay in order', () => {
  const t = 1_780_000_000_000;
  const gen = uuid7Generator(source([t], 0));
  const ids = Array.from({ length: 5000 }, () => gen());
  assert.deepEqual([...ids].sort(), ids);
  assert.equal(uuid7TimeMs(ids[4095] as string), t);
  assert.equal(uuid7TimeMs(ids[4096] as string), t + 1);
});
