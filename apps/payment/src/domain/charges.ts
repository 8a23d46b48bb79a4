/**
 * Charges and refunds, pure: given what is stored and a request, decide what to write and what
 * to answer. The shell reads, asks here, and applies the decision in the same transaction.
 *
 *   (none) ──charge──▶ CHARGED ──refund(s)──▶ CHARGED with refunded ≤ amount
 *   (none) ──refund──▶ VOID (a tombstone, amount 0: a late charge with that id is refused)
 *
 * Every request is keyed (chargeId, refundId): a repeat with the same parameters answers as the
 * first did and writes nothing; the same key with other parameters is refused.
 */
import { invariant } from '@concord/core';
import { MAX_AMOUNT_CENTS } from './limits.js';

export type ChargeStatus = 'CHARGED' | 'VOID';

export interface Charge {
  id: string;
  /** null for a VOID tombstone. */
  userId: string | null;
  orderId: string | null;
  amount: number;
  refunded: number;
  status: ChargeStatus;
}

export interface ChargeRequest {
  chargeId: string;
  userId: string;
  orderId: string;
  amount: number;
}

export interface Refund {
  id: string;
  chargeId: string;
  /** What was actually refunded. */
  amount: number;
  /** What was asked for; null when the request left the amount out ("the rest"). */
  requested: number | null;
}

export interface RefundRequest {
  chargeId: string;
  refundId: string;
  /** Left out: everything not yet refunded. */
  amount?: number;
}

export type Refusal =
  | { reason: 'charge-voided'; chargeId: string }
  | { reason: 'charge-mismatch'; chargeId: string; fields: string[] }
  | { reason: 'insufficient-funds'; balance: number; amount: number }
  | { reason: 'key-mismatch'; refundId: string; fields: string[] }
  | { reason: 'refund-exceeds-charge'; chargeId: string; amount: number; refundable: number };

export type ChargeDecision =
  /** Already applied with these parameters: answer from what is stored. */
  | { kind: 'replay' }
  /** Debit the wallet and record the charge. */
  | { kind: 'apply'; balanceAfter: number }
  | { kind: 'refuse'; refusal: Refusal };

export type RefundDecision =
  | { kind: 'replay' }
  /** The charge is unknown: record a VOID tombstone and this refund (of 0). */
  | { kind: 'tombstone' }
  /** Record the refund; credit the wallet by `amount` (0 is a recorded no-op). */
  | { kind: 'apply'; amount: number }
  | { kind: 'refuse'; refusal: Refusal };

function assertAmount(amount: number, min: number, what: string): void {
  invariant(Number.isSafeInteger(amount) && amount >= min && amount <= MAX_AMOUNT_CENTS, `${what} ${amount} outside ${min}..${MAX_AMOUNT_CENTS}`);
}

/**
 * `balance` is the wallet's balance, or the initial balance when the wallet does not exist yet
 * (it is then created by the same transaction).
 */
export function decideCharge(stored: Charge | undefined, balance: number, req: ChargeRequest): ChargeDecision {
  assertAmount(req.amount, 1, 'charge amount');
  invariant(Number.isSafeInteger(balance) && balance >= 0, `wallet balance ${balance} is negative`);
  if (stored) {
    if (stored.status === 'VOID') return { kind: 'refuse', refusal: { reason: 'charge-voided', chargeId: req.chargeId } };
    const fields: string[] = [];
    if (stored.userId !== req.userId) fields.push('userId');
    if (stored.orderId !== req.orderId) fields.push('orderId');
    if (stored.amount !== req.amount) fields.push('amount');
    if (fields.length > 0) return { kind: 'refuse', refusal: { reason: 'charge-mismatch', chargeId: req.chargeId, fields } };
    return { kind: 'replay' };
  }
  if (balance < req.amount) return { kind: 'refuse', refusal: { reason: 'insufficient-funds', balance, amount: req.amount } };
  return { kind: 'apply', balanceAfter: balance - req.amount };
}

export function decideRefund(charge: Charge | undefined, prior: Refund | undefined, req: RefundRequest): RefundDecision {
  const requested = req.amount ?? null;
  if (requested !== null) assertAmount(requested, 0, 'refund amount');
  if (prior) {
    const fields: string[] = [];
    if (prior.chargeId !== req.chargeId) fields.push('chargeId');
    if (prior.requested !== requested) fields.push('amount');
    if (fields.length > 0) return { kind: 'refuse', refusal: { reason: 'key-mismatch', refundId: req.refundId, fields } };
    return { kind: 'replay' };
  }
  if (!charge) return { kind: 'tombstone' };
  // Compensating a charge that never happened: nothing to give back, and nothing to refuse.
  if (charge.status === 'VOID') return { kind: 'apply', amount: 0 };
  const refundable = charge.amount - charge.refunded;
  invariant(refundable >= 0, `charge ${charge.id} refunded ${charge.refunded} of ${charge.amount}`);
  const amount = requested ?? refundable;
  if (amount > refundable) return { kind: 'refuse', refusal: { reason: 'refund-exceeds-charge', chargeId: charge.id, amount, refundable } };
  return { kind: 'apply', amount };
}

/** The admin summary (API.md): wallet totals, Σ of CHARGED charges and Σ of refunds. */
export interface PaymentsSummary {
  wallets: { count: number; totalBalance: number; totalDeposited: number };
  charged: number;
  refunded: number;
}

/** The conservation law of the payment service: no money is created or lost. */
export function moneyConserved(s: PaymentsSummary): boolean {
  return s.wallets.totalDeposited === s.wallets.totalBalance + s.charged - s.refunded;
}
