/**
 * The invariant audit, as pure checks over what the admin API reports. Each check names the
 * invariant, passes or fails, and says why.
 */
export interface InventoryRow {
  productId: string;
  initial: number;
  available: number;
  reserved: number;
  sold: number;
}

export interface Snapshot {
  inventory: InventoryRow[];
  payments: { wallets: { count: number; totalBalance: number; totalDeposited: number }; charged: number; refunded: number };
  orders: { byStatus: Record<string, number>; confirmedTotal: number; confirmedPoints: number; confirmedQuantities: Record<string, number>; sagas: Record<string, number> };
  points: { totalPoints: number };
  quiet: boolean;
}

/** What a load generator saw (bench and chaos): acknowledged orders and statuses observed. */
export interface LoadRecord {
  /** Order ids acknowledged with 201 or 202. */
  acknowledged: string[];
  /** Order ids seen CONFIRMED at some point. */
  seenConfirmed: string[];
  /** Order ids the load generator cancelled. */
  cancelled: string[];
}

export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
}

const MAX_LISTED = 5;

function list(items: string[]): string {
  return items.length <= MAX_LISTED ? items.join(', ') : `${items.slice(0, MAX_LISTED).join(', ')} and ${items.length - MAX_LISTED} more`;
}

export function checkSnapshot(s: Snapshot): CheckResult[] {
  const out: CheckResult[] = [];
  const unbalanced = s.inventory.filter((p) => p.initial !== p.available + p.reserved + p.sold).map((p) => `${p.productId} (${p.initial} ≠ ${p.available}+${p.reserved}+${p.sold})`);
  out.push({ name: 'stock: initial = available + reserved + sold, per product', ok: unbalanced.length === 0, detail: unbalanced.length ? list(unbalanced) : `${s.inventory.length} products` });
  const negative = s.inventory.filter((p) => p.available < 0 || p.reserved < 0 || p.sold < 0).map((p) => p.productId);
  out.push({ name: 'stock: no counter below zero', ok: negative.length === 0, detail: negative.length ? list(negative) : 'none negative' });
  const reserved = s.inventory.filter((p) => p.reserved !== 0).map((p) => `${p.productId} (${p.reserved})`);
  out.push({
    name: 'stock: reserved = 0 when no saga is running',
    ok: !s.quiet || reserved.length === 0,
    detail: !s.quiet ? 'not checked: sagas still running' : reserved.length ? list(reserved) : 'no reservations held',
  });
  const p = s.payments;
  out.push({
    name: 'money: totalDeposited = totalBalance + charged − refunded',
    ok: p.wallets.totalDeposited === p.wallets.totalBalance + p.charged - p.refunded,
    detail: `${p.wallets.totalDeposited} vs ${p.wallets.totalBalance} + ${p.charged} − ${p.refunded}`,
  });
  out.push({
    name: 'money: confirmedTotal = charged − refunded',
    ok: s.orders.confirmedTotal === p.charged - p.refunded,
    detail: `${s.orders.confirmedTotal} vs ${p.charged} − ${p.refunded}`,
  });
  out.push({
    name: 'points: totalPoints = Σ floor(total/100) over confirmed orders',
    ok: s.points.totalPoints === s.orders.confirmedPoints,
    detail: `${s.points.totalPoints} vs ${s.orders.confirmedPoints}`,
  });
  const soldTotal = s.inventory.reduce((a, r) => a + r.sold, 0);
  const confirmedQty = Object.values(s.orders.confirmedQuantities).reduce((a, q) => a + q, 0);
  const perProduct = s.inventory
    .filter((r) => r.sold !== (s.orders.confirmedQuantities[r.productId] ?? 0))
    .map((r) => `${r.productId} (sold ${r.sold}, confirmed ${s.orders.confirmedQuantities[r.productId] ?? 0})`);
  out.push({
    name: 'stock: Σ sold = Σ quantities of confirmed orders (and per product)',
    ok: soldTotal === confirmedQty && perProduct.length === 0,
    detail: perProduct.length ? list(perProduct) : `${soldTotal} vs ${confirmedQty}`,
  });
  const pending = s.orders.byStatus.PENDING ?? 0;
  out.push({ name: 'orders: none PENDING once quiet', ok: s.quiet && pending === 0, detail: s.quiet ? `${pending} pending` : `never quiet: ${pending} pending, sagas ${JSON.stringify(s.orders.sagas)}` });
  return out;
}

export function checkRecord(r: LoadRecord, statusOf: ReadonlyMap<string, string | null>): CheckResult[] {
  const missing = r.acknowledged.filter((id) => !statusOf.get(id));
  const notTerminal = r.acknowledged.filter((id) => statusOf.get(id) === 'PENDING');
  const cancelled = new Set(r.cancelled);
  const flipped = r.seenConfirmed.filter((id) => !cancelled.has(id) && statusOf.get(id) !== 'CONFIRMED').map((id) => `${id} (${statusOf.get(id)})`);
  return [
    { name: 'load: every acknowledged order exists', ok: missing.length === 0, detail: missing.length ? `lost: ${list(missing)}` : `${r.acknowledged.length} acknowledged` },
    { name: 'load: every acknowledged order is terminal', ok: notTerminal.length === 0, detail: notTerminal.length ? list(notTerminal) : 'all terminal' },
    { name: 'load: an order seen CONFIRMED stays CONFIRMED unless cancelled', ok: flipped.length === 0, detail: flipped.length ? list(flipped) : `${r.seenConfirmed.length} seen confirmed` },
  ];
}
