/** CPU per order by service, from two readings of every instance's CPU counter around a phase. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type CpuSnapshot, addCpu, cpuPerOrder, emptyCpuTally } from '../src/bench/cpu.js';

const snap = (rows: Array<[string, string, number]>): CpuSnapshot => new Map(rows.map(([instance, service, seconds]) => [instance, { service, seconds }]));

test("a service's instances are summed, and the figures are microseconds per acknowledged order, the most expensive first", () => {
  const t = emptyCpuTally();
  addCpu(
    t,
    snap([['order-1', 'order', 10], ['rec-1', 'recommendation', 1], ['rec-2', 'recommendation', 2]]),
    snap([['order-1', 'order', 10.8], ['rec-1', 'recommendation', 1.1], ['rec-2', 'recommendation', 2.1]]),
    1000,
  );
  const r = cpuPerOrder(t);
  assert.equal(r.orders, 1000);
  assert.deepEqual(r.byService.map((s) => s.service), ['order', 'recommendation']);
  assert.ok(Math.abs((r.byService[0]?.us ?? 0) - 800) < 1e-6);
  assert.ok(Math.abs((r.byService[1]?.us ?? 0) - 200) < 1e-6);
  assert.ok(Math.abs(r.totalUs - 1000) < 1e-6);
});

test('an instance restarted during the phase counts from its restart; one that appeared counts from zero use; phases add up', () => {
  const t = emptyCpuTally();
  // order-1 restarted: its counter began again at 0 and reached 0.3 s. order-2 started during
  // the phase: all of its 0.2 s is in it. gone-1 stopped answering: left out.
  addCpu(t, snap([['order-1', 'order', 50], ['gone-1', 'order', 9]]), snap([['order-1', 'order', 0.3], ['order-2', 'order', 0.2]]), 100);
  assert.ok(Math.abs((t.seconds.get('order') ?? 0) - 0.5) < 1e-9);
  addCpu(t, snap([['order-1', 'order', 0.3]]), snap([['order-1', 'order', 0.5]]), 100);
  const r = cpuPerOrder(t);
  assert.equal(r.orders, 200);
  assert.ok(Math.abs(r.totalUs - 3500) < 1e-6, `${r.totalUs}`);
});

test('no acknowledged order does not divide by zero', () => {
  const t = emptyCpuTally();
  addCpu(t, snap([['gw', 'gateway', 1]]), snap([['gw', 'gateway', 1.5]]), 0);
  assert.ok(Number.isFinite(cpuPerOrder(t).totalUs));
});
