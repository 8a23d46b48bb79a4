import assert from 'node:assert/strict';
import { test } from 'node:test';
import { uuid7TimeMs } from '@concord/core';
import { timeOrderedId } from '../src/ids/ids.js';

test('the process id source makes distinct, increasing UUIDv7s across refills of its random pool', () => {
  const before = Date.now();
  const ids = Array.from({ length: 5000 }, () => timeOrderedId());
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual([...ids].sort(), ids);
  for (const id of [ids[0], ids[511], ids[512], ids[4999]] as string[]) {
    const ms = uuid7TimeMs(id);
    assert.ok(ms !== null && ms >= before - 1 && ms <= Date.now() + 5000, id);
  }
  // The random parts differ across the pool boundary (a stale pool would repeat them).
  assert.notEqual((ids[511] as string).slice(-12), (ids[1023] as string).slice(-12));
});
