/** The span encoder's cache of repeated names and attributes: what it writes is what writing each field gives. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Attributes } from '@opentelemetry/api';
import { ProtoWriter } from '@concord/core';
import { FragmentCache, MAX_CACHED_KEYS, MAX_CACHED_NAMES, MAX_VALUES_PER_KEY, writeKeyValues } from '../src/telemetry/otlp-proto.js';

function uncached(attrs: Attributes, name: string): Buffer {
  const w = new ProtoWriter(64);
  w.string(5, name);
  writeKeyValues(w, 9, attrs);
  return Buffer.from(w.bytes());
}

function cached(cache: FragmentCache, attrs: Attributes, name: string): Buffer {
  const w = new ProtoWriter(64);
  cache.writeName(w, name);
  cache.writeAttributes(w, attrs);
  return Buffer.from(w.bytes());
}

test('span names and attributes written through the cache are byte for byte what writing each field gives, whether kept, new or past the bounds', () => {
  const cache = new FragmentCache();
  const cases: Array<[Attributes, string]> = [];
  for (let i = 0; i < 3 * MAX_VALUES_PER_KEY; i++) {
    cases.push([
      {
        'http.request.method': i % 2 ? 'POST' : 'GET',
        'concord.request_id': `req-${i}`,
        'http.response.status_code': 200 + (i % 3),
        'saga.attempt': i % 2,
        'concord.retry': i % 2 === 0,
        'concord.ratio': 0.25,
        'concord.tags': ['a', `b${i}`],
        'concord.long': 'x'.repeat(100),
        'ünïcode.key': 'välue ✓',
        'concord.offset': -3,
        'concord.same-text': String(i % 2),
        'concord.skipped': undefined as unknown as string,
      },
      i % 3 ? 'POST inventory' : `GET /internal/products/${i}`,
    ]);
  }
  // More keys and names than the cache keeps.
  for (let i = 0; i < Math.max(MAX_CACHED_KEYS, MAX_CACHED_NAMES) + 10; i++) cases.push([{ [`key.${i}`]: 'v', [`num.${i}`]: i }, `name ${i}`]);
  cases.push([{ ['k'.repeat(200)]: 'long key' }, 'n'.repeat(200)]);
  for (let round = 0; round < 2; round++) {
    for (const [attrs, name] of cases) assert.deepEqual(cached(cache, attrs, name), uncached(attrs, name), `${name} ${JSON.stringify(attrs)}`);
  }
  assert.ok(cache.size.keys <= MAX_CACHED_KEYS, `${cache.size.keys} keys kept`);
  assert.ok(cache.size.names <= MAX_CACHED_NAMES, `${cache.size.names} names kept`);
  // 1 and '1' are different values with different encodings.
  assert.deepEqual(cached(cache, { 'concord.same-text': 1 }, 'n'), uncached({ 'concord.same-text': 1 }, 'n'));
});

test('a kept encoding is a copy: later writes to the buffer it was written into do not change it', () => {
  const cache = new FragmentCache();
  const w = new ProtoWriter(16);
  cache.writeName(w, 'db.transaction');
  cache.writeAttributes(w, { 'db.system': 'sqlite' });
  w.buf.fill(0);
  assert.deepEqual(cached(cache, { 'db.system': 'sqlite' }, 'db.transaction'), uncached({ 'db.system': 'sqlite' }, 'db.transaction'));
});
