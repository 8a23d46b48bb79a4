import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Charge, type Refund, decideCharge, decideRefund, moneyConserved } from '../src/domain/charges.js';
import { INITIAL_BALANCE_CENTS } from '../src/domain/limits.js';

const req = { chargeId: 'c-1', userId: 'u-1', orderId: 'o-1', amount: 2500 };
const charged = (over: Partial<Charge> = {}): Charge => ({ id: 'c-1', userId: 'u-1', orderId: 'o-1', amount: 2500, refunded: 0, status: 'CHARGED', ...over });
const voided: Charge = { id: 'c-1', userId: null, orderId: null, amount: 0, refunded: 0, status: 'VOID' };

test('a new charge within the balance is applied and debits exactly the amount', () => {
  assert.deepEqual(decideCharge(undefined, INITIAL_BALANCE_CENTS, req), { kind: 'apply', balanceAfter: INITIAL_BALANCE_CENTS - 2500 });
  assert.deepEqual(decideCharge(undefined, 2500, req), { kind: 'apply', balanceAfter: 0 }, 'the whole balance may be spent');
});

test('a charge above the balance is refused with the balance and the amount', () => {
  assert.deepEqual(decideCharge(undefined, 2499, req), { kind: 'refuse', refusal: { reason: 'insufficient-funds', balance: 2499, amount: 2500 } });
});

test('a repeated charge with the same parameters is a replay, whatever the balance now', () => {
  assert.deepEqual(decideCharge(charged(), 0, req), { kind: 'replay' });
  assert.deepEqual(decideCharge(charged({ refunded: 2500 }), 0, req), { kind: 'replay' }, 'even after a refund');
});

test('the same charge id with other parameters is refused, naming every differing field', () => {
  const d = decideCharge(charged(), INITIAL_BALANCE_CENTS, { ...req, userId: 'u-2', amount: 1 });
  assert.deepEqual(d, { kind: 'refuse', refusal: { reason: 'charge-mismatch', chargeId: 'c-1', fields: ['userId', 'amount'] } });
  assert.deepEqual(decideCharge(charged(), INITIAL_BALANCE_CENTS, { ...req, orderId: 'o-2' }), {
    kind: 'refuse',
    refusal: { reason: 'charge-mismatch', chargeId: 'c-1', fields: ['orderId'] },
  });
});

test('a charge whose id was refunded first (a VOID tombstone) is refused', () => {
  assert.deepEqual(decideCharge(voided, INITIAL_BALANCE_CENTS, req), { kind: 'refuse', refusal: { reason: 'charge-voided', chargeId: 'c-1' } });
});

test('an impossible amount or balance reaching the core is an invariant failure, not a decision', () => {
  assert.throws(() => decideCharge(undefined, INITIAL_BALANCE_CENTS, { ...req, amount: 0 }), /charge amount 0/);
  assert.throws(() => decideCharge(undefined, INITIAL_BALANCE_CENTS, { ...req, amount: 1.5 }), /charge amount/);
  assert.throws(() => decideCharge(undefined, -1, req), /negative/);
});

const refundReq = { chargeId: 'c-1', refundId: 'r-1' };
const prior = (over: Partial<Refund> = {}): Refund => ({ id: 'r-1', chargeId: 'c-1', amount: 2500, requested: null, ...over });

test('a refund without an amount gives back everything not yet refunded', () => {
  assert.deepEqual(decideRefund(charged(), undefined, refundReq), { kind: 'apply', amount: 2500 });
  assert.deepEqual(decideRefund(charged({ refunded: 1000 }), undefined, refundReq), { kind: 'apply', amount: 1500 });
  assert.deepEqual(decideRefund(charged({ refunded: 2500 }), undefined, refundReq), { kind: 'apply', amount: 0 }, 'fully refunded: a recorded no-op');
});

test('a partial refund up to what is left is applied; above it is refused with what is refundable', () => {
  assert.deepEqual(decideRefund(charged({ refunded: 1000 }), undefined, { ...refundReq, amount: 1500 }), { kind: 'apply', amount: 1500 });
  assert.deepEqual(decideRefund(charged(), undefined, { ...refundReq, amount: 0 }), { kind: 'apply', amount: 0 });
  assert.deepEqual(decideRefund(charged({ refunded: 1000 }), undefined, { ...refundReq, amount: 1501 }), {
    kind: 'refuse',
    refusal: { reason: 'refund-exceeds-charge', chargeId: 'c-1', amount: 1501, refundable: 1500 },
  });
});

test('a repeated refund id with the same parameters is a replay, even when nothing is left to refund', () => {
  assert.deepEqual(decideRefund(charged({ refunded: 2500 }), prior(), refundReq), { kind: 'replay' });
  assert.deepEqual(decideRefund(charged({ refunded: 700 }), prior({ amount: 700, requested: 700 }), { ...refundReq, amount: 700 }), { kind: 'replay' });
});

test('a repeated refund id with another charge or amount is a key mismatch', () => {
  assert.deepEqual(decideRefund(charged(), prior({ requested: 700 }), { ...refundReq, amount: 800 }), {
    kind: 'refuse',
    refusal: { reason: 'key-mismatch', refundId: 'r-1', fields: ['amount'] },
  });
  assert.deepEqual(decideRefund(charged(), prior({ requested: null }), { ...refundReq, amount: 2500 }), {
    kind: 'refuse',
    refusal: { reason: 'key-mismatch', refundId: 'r-1', fields: ['amount'] },
  });
  assert.deepEqual(decideRefund(undefined, prior({ chargeId: 'c-other' }), refundReq), {
    kind: 'refuse',
    refusal: { reason: 'key-mismatch', refundId: 'r-1', fields: ['chargeId'] },
  });
});

test('a refund of an unknown charge leaves a tombstone; refunds of a tombstone give back 0', () => {
  assert.deepEqual(decideRefund(undefined, undefined, refundReq), { kind: 'tombstone' });
  assert.deepEqual(decideRefund(undefined, undefined, { ...refundReq, amount: 2500 }), { kind: 'tombstone' });
  assert.deepEqual(decideRefund(voided, undefined, { ...refundReq, refundId: 'r-2', amount: 2500 }), { kind: 'apply', amount: 0 });
});

test('money is conserved when deposits equal balances plus charges minus refunds', () => {
  const s = { wallets: { count: 2, totalBalance: 1_997_000, totalDeposited: 2_000_000 }, charged: 5000, refunded: 2000 };
  assert.equal(moneyConserved(s), true);
  assert.equal(moneyConserved({ ...s, refunded: 2001 }), false);
});
