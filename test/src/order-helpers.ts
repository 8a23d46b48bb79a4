/** Shared steps of order-system tests: place, poll, read admin summaries. */
import { randomUUID } from 'node:crypto';
import { http, pollUntil } from './harness.js';

export interface Line {
  productId: string;
  quantity: number;
}

export async function placeOrder(gw: string, auth: Record<string, string>, items: Line[], opts: { key?: string; waitS?: number } = {}) {
  const headers: Record<string, string> = { ...auth, 'idempotency-key': opts.key ?? randomUUID() };
  if (opts.waitS !== undefined) headers.prefer = `wait=${opts.waitS}`;
  return http(`${gw}/api/orders`, { method: 'POST', json: { items }, headers });
}

export async function terminalOrder(gw: string, auth: Record<string, string>, id: string, timeoutMs = 20_000): Promise<any> {
  return pollUntil(
    `order ${id} terminal`,
    async () => {
      const r = await http(`${gw}/api/orders/${id}`, { headers: auth });
      return r.status === 200 && r.body.status !== 'PENDING' ? r.body : null;
    },
    timeoutMs,
    50,
  );
}

export async function inventoryOf(gw: string, admin: Record<string, string>, productId: string) {
  const r = await http(`${gw}/api/admin/inventory?limit=10000`, { headers: admin });
  return (r.body.items as Array<{ productId: string; initial: number; available: number; reserved: number; sold: number }>).find((p) => p.productId === productId)!;
}

export async function createProduct(gw: string, admin: Record<string, string>, p: { id: string; name?: string; price: number; stock: number }) {
  const r = await http(`${gw}/api/admin/products`, { method: 'POST', json: { name: p.id, ...p }, headers: admin });
  if (r.status !== 201) throw new Error(`create product answered ${r.status}: ${r.text}`);
  return r.body;
}

export async function balanceOf(gw: string, auth: Record<string, string>): Promise<number> {
  return (await http(`${gw}/api/wallet`, { headers: auth })).body.balance;
}

export async function pointsOf(gw: string, auth: Record<string, string>): Promise<number> {
  return (await http(`${gw}/api/points`, { headers: auth })).body.points;
}
