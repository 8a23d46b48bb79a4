/** What a load run needs: an admin token, products with deep stock, and registered users. */
import { randomBytes } from 'node:crypto';
import { adminToken, politeFetch } from '../audit/audit.js';
import { type LoadUser, meanOrderCents } from './loadgen.js';

/** A new user's wallet, in cents: every newly registered user gets 10000.00 (API.md). */
export const NEW_WALLET_CENTS = 1_000_000;
/** The price of the bench's product `i`, in cents (100 to 499). */
export const benchPriceCents = (i: number): number => 100 + ((i * 37) % 400);
/** A flat-out run's users are planned for this rate: users are cheap to add, wallets running dry mid-run are not. */
const FLAT_OUT_PLAN_PER_S = 2_500;
/** The share of a wallet's average number of orders a run plans to use. */
const WALLET_PLAN_SHARE = 0.5;
/** Orders per second per user the plan stays under (the gateway's default limit is 50/s per user). */
const PER_USER_RATE = 20;
const MIN_USERS = 50;
/** The most users a run registers (as many as `--users` accepts). */
export const MAX_USERS = 100_000;

/**
 * Users a load of `ratePerS` (0: flat out) for `runMs` (warm-up included) needs: enough to stay
 * under the per-user rate limit, and enough wallets that none runs dry. A drained wallet turns
 * each later order of its user into a refused payment (FAILED): the run would then time the
 * refusal path instead of orders.
 */
export function usersFor(o: { ratePerS: number; runMs: number; products: number }): number {
  const rate = o.ratePerS > 0 ? o.ratePerS : FLAT_OUT_PLAN_PER_S;
  const orders = (rate * o.runMs) / 1000;
  const prices = Array.from({ length: o.products }, (_, i) => benchPriceCents(i));
  const forWallets = Math.ceil((orders * meanOrderCents(prices)) / (NEW_WALLET_CENTS * WALLET_PLAN_SHARE));
  return Math.min(MAX_USERS, Math.max(MIN_USERS, Math.ceil(rate / PER_USER_RATE), forWallets));
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  // Registering hundreds of users passes the per-IP limit: wait as a 429 says, and ask again.
  const r = await politeFetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) }, 30_000);
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
    const r = await post(`${o.gatewayUrl}/api/admin/products`, { id, name: `Bench product ${i + 1}`, price: benchPriceCents(i), stock: 1_000_000 }, { authorization: `Bearer ${admin}` });
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
