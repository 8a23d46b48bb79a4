import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normalizeItems, sameItems, stockProblem } from '../src/domain/items.js';

test('duplicate product ids are merged by summing, and items are sorted by product id', () => {
  assert.deepEqual(
    normalizeItems([
      { productId: 'b', quantity: 2 },
      { productId: 'a', quantity: 1 },
      { productId: 'b', quantity: 3 },
    ]),
    [
      { productId: 'a', quantity: 1 },
      { productId: 'b', quantity: 5 },
    ],
  );
});

test('a replay in another order or with the same product split in two is the same request', () => {
  const stored = normalizeItems([
    { productId: 'a', quantity: 1 },
    { productId: 'b', quantity: 5 },
  ]);
  const replay = normalizeItems([
    { productId: 'b', quantity: 4 },
    { productId: 'a', quantity: 1 },
    { productId: 'b', quantity: 1 },
  ]);
  assert.ok(sameItems(stored, replay));
  assert.ok(!sameItems(stored, normalizeItems([{ productId: 'a', quantity: 1 }])));
  assert.ok(
    !sameItems(
      stored,
      normalizeItems([
        { productId: 'a', quantity: 1 },
        { productId: 'b', quantity: 6 },
      ]),
    ),
  );
});

test('unknown products are reported before shortages, each in product-id order', () => {
  const available = new Map([
    ['a', 0],
    ['c', 10],
  ]);
  const items = normalizeItems([
    { productId: 'c', quantity: 11 },
    { productId: 'a', quantity: 1 },
    { productId: 'b', quantity: 1 },
  ]);
  assert.deepEqual(stockProblem(items, available), { kind: 'unknown-product', productId: 'b' });
  assert.deepEqual(
    stockProblem(
      items.filter((i) => i.productId !== 'b'),
      available,
    ),
    { kind: 'insufficient-stock', productId: 'a', requested: 1, available: 0 },
  );
});

test('exactly the available quantity can be reserved', () => {
  assert.equal(stockProblem([{ productId: 'a', quantity: 10 }], new Map([['a', 10]])), null);
  assert.deepEqual(stockProblem([{ productId: 'a', quantity: 11 }], new Map([['a', 10]])), {
    kind: 'insufficient-stock',
    productId: 'a',
    requested: 11,
    available: 10,
  });
});
