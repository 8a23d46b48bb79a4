import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seedProduct, seedProductId, seedProducts } from '../src/domain/seed.js';

test('seed ids are p-0001 … zero-padded to 4 digits, wider beyond 9999', () => {
  assert.deepEqual(
    seedProducts(3).map((p) => p.id),
    ['p-0001', 'p-0002', 'p-0003'],
  );
  assert.equal(seedProductId(9999, 9999), 'p-9999');
  assert.equal(seedProductId(7, 10_000), 'p-00007');
  assert.equal(seedProductId(10_000, 10_000), 'p-10000');
});

test('seed products are deterministic, priced 1.00 … 100.00 with stock 1000, and varied', () => {
  const a = seedProducts(500);
  assert.deepEqual(a, seedProducts(500));
  assert.equal(a.length, 500);
  for (const p of a) {
    assert.ok(Number.isInteger(p.price) && p.price >= 100 && p.price <= 10_000, `${p.id} ${p.price}`);
    assert.equal(p.stock, 1000);
    assert.match(p.name, /^[A-Z][a-z]+ [A-Z][a-z]+ [A-Z][a-z]+$/);
  }
  assert.ok(new Set(a.map((p) => p.price)).size > 50, 'prices vary');
  assert.ok(new Set(a.map((p) => p.name)).size > 100, 'names vary');
});

test('seed products can be generated in chunks that add up to the whole', () => {
  const whole = seedProducts(1234);
  const chunks = [...seedProducts(1234, 1, 500), ...seedProducts(1234, 501, 1000), ...seedProducts(1234, 1001, 1500)];
  assert.deepEqual(chunks, whole);
  assert.deepEqual(seedProduct(42, 1234), whole[41]);
});
