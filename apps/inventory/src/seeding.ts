/**
 * Demo data on the very first start, exactly once even when several instances start together:
 * the flag row and the products are written in one transaction, and whoever finds the flag
 * (or loses the race to insert it) does nothing.
 */
import { type Store, isUniqueViolation } from '@concord/platform';
import type { InventoryDb, ProductRow } from './db.js';
import { seedProducts } from './domain/seed.js';

const FLAG = 'seeded';
/** Rows per INSERT: 9 columns × 500 stays far below every engine's bound on parameters. */
const CHUNK_ROWS = 500;

/** Returns how many products this call created (0 when seeding happened before). */
export async function seedOnce(store: Store<InventoryDb>, count: number, nowMs: number): Promise<number> {
  const now = new Date(nowMs).toISOString();
  try {
    return await store.tx(async (trx) => {
      const flag = await trx.selectFrom('inventory_meta').select('value').where('name', '=', FLAG).executeTakeFirst();
      if (flag) return 0;
      await trx
        .insertInto('inventory_meta')
        .values({ name: FLAG, value: JSON.stringify({ products: count, at: now }) })
        .execute();
      for (let from = 1; from <= count; from += CHUNK_ROWS) {
        const rows: ProductRow[] = seedProducts(count, from, from + CHUNK_ROWS - 1).map((p) => ({
          id: p.id,
          name: p.name,
          price: p.price,
          initial: p.stock,
          available: p.stock,
          reserved: 0,
          sold: 0,
          created_at: now,
          updated_at: now,
        }));
        await trx.insertInto('products').values(rows).execute();
      }
      return count;
    });
  } catch (err) {
    if (isUniqueViolation(err)) return 0; // another instance seeded at the same moment
    throw err;
  }
}
