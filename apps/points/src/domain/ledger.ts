/**
 * The points ledger, pure: an award adds points, a revoke takes them back, each exactly once
 * by its key. A user's balance is the sum of their entries.
 *
 * Balances may go below zero. Points cannot be spent, so a balance only dips below zero when a
 * revoke overtakes the award it undoes (messages can be delayed and reordered); refusing it
 * would strand the compensation, and the audit (Σ over confirmed orders = totalPoints) needs
 * every revoke of exactly what was awarded to succeed, in either order.
 */
import { invariant } from '@concord/core';
import { MAX_POINTS } from './limits.js';

export type EntryKind = 'AWARD' | 'REVOKE';

export interface EntryRequest {
  kind: EntryKind;
  key: string;
  userId: string;
  orderId: string;
  points: number;
}

export interface Entry {
  key: string;
  kind: EntryKind;
  userId: string;
  orderId: string;
  /** Positive for an award, negative for a revoke (0 either way for 0 points). */
  delta: number;
}

export type EntryDecision =
  | { kind: 'replay' }
  | { kind: 'apply'; delta: number }
  | { kind: 'refuse'; refusal: { reason: 'key-mismatch'; key: string; fields: string[] } };

export function deltaOf(kind: EntryKind, points: number): number {
  return kind === 'AWARD' || points === 0 ? points : -points;
}

export function decideEntry(prior: Entry | undefined, req: EntryRequest): EntryDecision {
  invariant(Number.isSafeInteger(req.points) && req.points >= 0 && req.points <= MAX_POINTS, `points ${req.points} outside 0..${MAX_POINTS}`);
  const delta = deltaOf(req.kind, req.points);
  if (!prior) return { kind: 'apply', delta };
  const fields: string[] = [];
  if (prior.kind !== req.kind) fields.push('kind');
  if (prior.userId !== req.userId) fields.push('userId');
  if (prior.orderId !== req.orderId) fields.push('orderId');
  if (prior.delta !== delta) fields.push('points');
  if (fields.length > 0) return { kind: 'refuse', refusal: { reason: 'key-mismatch', key: req.key, fields } };
  return { kind: 'replay' };
}
