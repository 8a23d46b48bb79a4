import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Entry, type EntryRequest, decideEntry, deltaOf } from '../src/domain/ledger.js';

const award: EntryRequest = { kind: 'AWARD', key: 'k-1', userId: 'u-1', orderId: 'o-1', points: 42 };
const stored = (over: Partial<Entry> = {}): Entry => ({ key: 'k-1', kind: 'AWARD', userId: 'u-1', orderId: 'o-1', delta: 42, ...over });

test('an award adds its points, a revoke takes them away (and 0 is 0, not -0)', () => {
  assert.equal(deltaOf('AWARD', 42), 42);
  assert.equal(deltaOf('REVOKE', 42), -42);
  assert.ok(Object.is(deltaOf('REVOKE', 0), 0));
});

test('a new key is applied with its delta', () => {
  assert.deepEqual(decideEntry(undefined, award), { kind: 'apply', delta: 42 });
  assert.deepEqual(decideEntry(undefined, { ...award, kind: 'REVOKE' }), { kind: 'apply', delta: -42 });
});

test('a repeated key with the same parameters is a replay', () => {
  assert.deepEqual(decideEntry(stored(), award), { kind: 'replay' });
  assert.deepEqual(decideEntry(stored({ kind: 'REVOKE', delta: -42 }), { ...award, kind: 'REVOKE' }), { kind: 'replay' });
});

test('a repeated key with other parameters is a key mismatch naming the fields', () => {
  assert.deepEqual(decideEntry(stored(), { ...award, points: 43, orderId: 'o-2' }), {
    kind: 'refuse',
    refusal: { reason: 'key-mismatch', key: 'k-1', fields: ['orderId', 'points'] },
  });
  assert.deepEqual(decideEntry(stored({ delta: 0 }), { ...award, kind: 'REVOKE', points: 0 }), {
    kind: 'refuse',
    refusal: { reason: 'key-mismatch', key: 'k-1', fields: ['kind'] },
  });
  assert.deepEqual(decideEntry(stored(), { ...award, userId: 'u-2' }), { kind: 'refuse', refusal: { reason: 'key-mismatch', key: 'k-1', fields: ['userId'] } });
});

test('impossible point counts reaching the core are invariant failures', () => {
  assert.throws(() => decideEntry(undefined, { ...award, points: -1 }), /points -1/);
  assert.throws(() => decideEntry(undefined, { ...award, points: 0.5 }), /points 0.5/);
});
