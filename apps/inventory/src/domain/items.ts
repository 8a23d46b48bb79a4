/**
 * Reservation items: normalising a request (duplicate product ids are merged by summing their
 * quantities, then sorted by product id), comparing a replay with what was stored, and checking
 * a request against the stock it needs.
 */
export interface Item {
  productId: string;
  quantity: number;
}

/** Merges duplicate product ids (sum) and sorts by product id: one line per product. */
export function normalizeItems(items: readonly Item[]): Item[] {
  const merged = new Map<string, number>();
  for (const it of items) merged.set(it.productId, (merged.get(it.productId) ?? 0) + it.quantity);
  return [...merged.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([productId, quantity]) => ({ productId, quantity }));
}

/** True when two normalised item lists are the same request. */
export function sameItems(a: readonly Item[], b: readonly Item[]): boolean {
  return a.length === b.length && a.every((x, i) => x.productId === b[i]?.productId && x.quantity === b[i]?.quantity);
}

export type StockProblem =
  | { kind: 'unknown-product'; productId: string }
  | { kind: 'insufficient-stock'; productId: string; requested: number; available: number };

/**
 * The first reason a reservation of `items` (normalised) cannot be made from `available`
 * (units per known product id), or null when it can. Unknown products are reported before
 * shortages, each in product-id order, so the answer does not depend on timing.
 */
export function stockProblem(items: readonly Item[], available: ReadonlyMap<string, number>): StockProblem | null {
  for (const it of items) if (!available.has(it.productId)) return { kind: 'unknown-product', productId: it.productId };
  for (const it of items) {
    const have = available.get(it.productId) as number;
    if (have < it.quantity) return { kind: 'insufficient-stock', productId: it.productId, requested: it.quantity, available: have };
  }
  return null;
}
