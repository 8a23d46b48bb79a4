/** What a load run needs: an admin token, products with deep stock, and registered users. */
import { randomBytes } from 'node:crypto';
import { adminToken } from '../audit/audit.js';
import type { LoadUser } from './loadgen.js';

async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), signal: AbortSignal.timeout(30_000) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

async function inBatches<T>(n: number, batch: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i += batch) out.push(...(await Promise.all(Array.from({ length: Math.min(batch, n - i) }, (_, j) => fn(i + j)))));
  return out;
}

export interface Prepared {
  admin: string;
  users: LoadUser[];
  productIds: string[];
}

export async function prepare(o: { gatewayUrl: string; adminEmail: string; adminPassword: string; users: number; products: number; progress: (s: string) => void }): Promise<Prepared> {
  const admin = await adminToken(o.gatewayUrl, o.adminEmail, o.adminPassword);
  const run = randomBytes(3).toString('hex');
  o.progress(`creating ${o.products} products with deep stock`);
  const productIds = await inBatches(o.products, 16, async (i) => {
    const id = `bench-${run}-${String(i + 1).padStart(3, '0')}`;
    const r = await post(`${o.gatewayUrl}/api/admin/products`, { id, name: `Bench product ${i + 1}`, price: 100 + ((i * 37) % 400), stock: 1_000_000 }, { authorization: `Bearer ${admin}` });
    if (r.status !== 201) throw new Error(`creating product ${id} answered ${r.status}: ${JSON.stringify(r.body)}`);
    return id;
  });
  const users = await inBatches(o.users, 16, async (i) => {
    if (i % 50 === 0) o.progress(`registering users ${i}/${o.users}`);
    const email = `bench-${run}-${i}@bench.concord.test`;
    const password = `bench-${run}-password`;
    const reg = await post(`${o.gatewayUrl}/api/auth/register`, { email, password, name: `Bench ${i}` });
    if (reg.status !== 201) throw new Error(`register answered ${reg.status}: ${JSON.stringify(reg.body)}`);
    const login = await post(`${o.gatewayUrl}/api/auth/login`, { email, password });
    if (login.status !== 200) throw new Error(`login answered ${login.status}`);
    return { id: reg.body.id as string, token: login.body.token as string };
  });
  return { admin, users, productIds };
}
