/** How many users a load run registers: under the per-user rate limit, with wallets that last the run. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_LINES, MAX_QUANTITY, meanOrderCents } from '../src/bench/loadgen.js';
import { MAX_USERS, NEW_WALLET_CENTS, benchPriceCents, usersFor } from '../src/bench/setup.js';
import { mulberry32 } from '@concord/core';

test("the mean order cost matches the generator's orders (1-3 distinct products, 1-2 units each)", () => {
  const prices = Array.from({ length: 50 }, (_, i) => benchPriceCents(i));
  // Sample orders the way the generator draws them.
  const random = mulberry32(7);
  let sum = 0;
  const N = 200_000;
  for (let k = 0; k < N; k++) {
    const lines = 1 + Math.floor(random() * MAX_LINES);
    const picks = new Set<number>();
    while (picks.size < lines) picks.add(Math.floor(random() * prices.length));
    for (const p of picks) sum += (prices[p] as number) * (1 + Math.floor(random() * MAX_QUANTITY));
  }
  const sampled = sum / N;
  assert.ok(Math.abs(meanOrderCents(prices) - sampled) / sampled < 0.01, `${meanOrderCents(prices)} against ${sampled}`);
  // With one product, every order has one line.
  assert.equal(meanOrderCents([300]), 300 * 1.5);
  assert.equal(meanOrderCents([]), 0);
});

test('wallets last the run: the planned orders cost at most half of what the users hold', () => {
  const prices = Array.from({ length: 50 }, (_, i) => benchPriceCents(i));
  for (const [ratePerS, runMs] of [
    [590, 150_000],
    [0, 150_000],
    [350, 300_000],
    [1000, 10_000],
  ] as const) {
    const users = usersFor({ ratePerS, runMs, products: 50 });
    const orders = ((ratePerS || 2500) * runMs) / 1000;
    assert.ok(orders * meanOrderCents(prices) <= 0.5 * users * NEW_WALLET_CENTS + NEW_WALLET_CENTS, `${ratePerS}/s for ${runMs} ms: ${users} users`);
  }
  // The case that drained wallets: 590/s for 150 s with 50 users paid for ~58,000 orders of 88,500.
  assert.ok(usersFor({ ratePerS: 590, runMs: 150_000, products: 50 }) >= 150);
});

test('short runs are sized by the rate limit, never below 50 users', () => {
  assert.equal(usersFor({ ratePerS: 10, runMs: 1_000, products: 50 }), 50);
  assert.equal(usersFor({ ratePerS: 4000, runMs: 1_000, products: 50 }), 200);
  assert.equal(usersFor({ ratePerS: 0, runMs: 100 * 3_600_000, products: 50 }), MAX_USERS, 'a very long run registers at most MAX_USERS');
});
