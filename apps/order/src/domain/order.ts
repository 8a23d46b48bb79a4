/** Pure order rules: validation beyond the schema, totals, points, statuses, cursors. */
import type { FieldError } from '@concord/platform';

export type OrderStatus = 'PENDING' | 'CONFIRMED' | 'FAILED' | 'CANCELLED';
export const TERMINAL: readonly OrderStatus[] = ['CONFIRMED', 'FAILED', 'CANCELLED'];

export interface LineIn {
  productId: string;
  quantity: number;
}
export interface Line extends LineIn {
  price: number;
}

export interface Order {
  id: string;
  userId: string;
  items: Line[];
  total: number;
  status: OrderStatus;
  reason?: string;
  createdAt: string;
  updatedAt: string;
  cancellation?: 'REQUESTED';
}

/** Largest total an order may have (cents): keeps every sum far inside safe integers. */
export const MAX_TOTAL_CENTS = 1_000_000_000_000;

export function duplicateProducts(items: readonly LineIn[]): FieldError[] {
  const seen = new Map<string, number>();
  const errors: FieldError[] = [];
  items.forEach((it, i) => {
    const first = seen.get(it.productId);
    if (first !== undefined) errors.push({ path: `/body/items/${i}/productId`, message: `repeats items/${first}; put the whole quantity on one line` });
    else seen.set(it.productId, i);
  });
  return errors;
}

export function priceLines(items: readonly LineIn[], prices: ReadonlyMap<string, number>): { lines: Line[]; errors: FieldError[]; total: number } {
  const errors: FieldError[] = [];
  const lines: Line[] = [];
  let total = 0;
  items.forEach((it, i) => {
    const price = prices.get(it.productId);
    if (price === undefined) errors.push({ path: `/body/items/${i}/productId`, message: `no product "${it.productId}"` });
    else {
      lines.push({ ...it, price });
      total += price * it.quantity;
    }
  });
  if (errors.length === 0 && total > MAX_TOTAL_CENTS) errors.push({ path: '/body/items', message: `the order total exceeds ${MAX_TOTAL_CENTS} cents` });
  return { lines, errors, total };
}

/** One point per whole 1.00 (100 cents). */
export function pointsFor(totalCents: number): number {
  return Math.floor(totalCents / 100);
}

/** How an undone order ends: FAILED when refused before any money moved, else CANCELLED. */
export function undoneStatus(failure: { step: string; kind: 'business' | 'exhausted' } | null): 'FAILED' | 'CANCELLED' {
  if (failure && failure.kind === 'business' && (failure.step === 'reserve-stock' || failure.step === 'charge-wallet')) return 'FAILED';
  return 'CANCELLED';
}

export interface Cursor {
  createdAt: string;
  id: string;
}

export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify([c.createdAt, c.id])).toString('base64url');
}

export function decodeCursor(s: string): Cursor | null {
  try {
    const v = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string' && v[0].length <= 40 && v[1].length <= 64) return { createdAt: v[0], id: v[1] };
  } catch {
    /* fall through */
  }
  return null;
}

/** RFC 7240 `Prefer: wait=<seconds>`; null when absent or malformed. */
export function preferWaitS(header: string | string[] | undefined): number | null {
  if (typeof header !== 'string') return null;
  for (const part of header.split(',')) {
    const m = /^\s*wait\s*=\s*(\d{1,6})\s*$/i.exec(part);
    if (m) return Number(m[1]);
  }
  return null;
}
