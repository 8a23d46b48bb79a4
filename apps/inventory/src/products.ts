/**
 * Products and their stock counters: the catalogue reads and the admin writes.
 */
import { HttpError, type Store, isUniqueViolation } from '@concord/platform';
import type { Kysely } from 'kysely';
import { paginate } from './domain/cursor.js';
import { PRODUCT_MAX_UNITS } from './domain/limits.js';
import type { InventoryDb, ProductRow } from './db.js';

export interface PublicProduct {
  id: string;
  name: string;
  price: number;
  available: number;
}

export interface AdminProduct extends PublicProduct {
  initial: number;
  reserved: number;
  sold: number;
}

export interface StockLine {
  productId: string;
  initial: number;
  available: number;
  reserved: number;
  sold: number;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export const publicView = (r: Pick<ProductRow, 'id' | 'name' | 'price' | 'available'>): PublicProduct => ({
  id: r.id,
  name: r.name,
  price: r.price,
  available: r.available,
});
const adminView = (r: ProductRow): AdminProduct => ({ ...publicView(r), initial: r.initial, reserved: r.reserved, sold: r.sold });
const stockLine = (r: Pick<ProductRow, 'id' | 'initial' | 'available' | 'reserved' | 'sold'>): StockLine => ({
  productId: r.id,
  initial: r.initial,
  available: r.available,
  reserved: r.reserved,
  sold: r.sold,
});

export class Products {
  constructor(private readonly store: Store<InventoryDb>) {}

  private get db(): Kysely<InventoryDb> {
    return this.store.db;
  }

  /** Products ordered by id, after `afterId` (exclusive). */
  async page(afterId: string | null, limit: number): Promise<Page<PublicProduct>> {
    let q = this.db
      .selectFrom('products')
      .select(['id', 'name', 'price', 'available'])
      .orderBy('id')
      .limit(limit + 1);
    if (afterId !== null) q = q.where('id', '>', afterId);
    const { page, nextCursor } = paginate(await q.execute(), limit, (r) => r.id);
    return { items: page.map(publicView), nextCursor };
  }

  async get(id: string): Promise<PublicProduct | null> {
    const row = await this.db.selectFrom('products').select(['id', 'name', 'price', 'available']).where('id', '=', id).executeTakeFirst();
    return row ? publicView(row) : null;
  }

  /** The known products among `ids`, in the order asked. */
  async byIds(ids: readonly string[]): Promise<PublicProduct[]> {
    if (ids.length === 0) return [];
    const rows = await this.db
      .selectFrom('products')
      .select(['id', 'name', 'price', 'available'])
      .where('id', 'in', [...ids])
      .execute();
    const byId = new Map(rows.map((r) => [r.id, publicView(r)]));
    return ids.flatMap((id) => byId.get(id) ?? []);
  }

  async create(p: { id: string; name: string; price: number; stock: number }, nowMs: number): Promise<AdminProduct> {
    const now = new Date(nowMs).toISOString();
    const row: ProductRow = {
      id: p.id,
      name: p.name,
      price: p.price,
      initial: p.stock,
      available: p.stock,
      reserved: 0,
      sold: 0,
      created_at: now,
      updated_at: now,
    };
    try {
      await this.store.tx((trx) => trx.insertInto('products').values(row).execute());
    } catch (err) {
      if (isUniqueViolation(err)) throw new HttpError(409, 'product-exists', `a product with id ${p.id} already exists`, { productId: p.id });
      throw err;
    }
    return adminView(row);
  }

  /** Adds units to `initial` and `available`. */
  async addStock(id: string, quantity: number, nowMs: number): Promise<AdminProduct> {
    const row = await this.store.tx(async (trx) => {
      const r = await trx
        .updateTable('products')
        .set((eb) => ({ initial: eb('initial', '+', quantity), available: eb('available', '+', quantity), updated_at: new Date(nowMs).toISOString() }))
        .where('id', '=', id)
        .where('initial', '<=', PRODUCT_MAX_UNITS - quantity)
        .executeTakeFirst();
      const after = await trx.selectFrom('products').selectAll().where('id', '=', id).executeTakeFirst();
      if (!after) throw new HttpError(404, 'unknown-product', `no product ${id}`, { productId: id });
      if (Number(r.numUpdatedRows) !== 1) {
        throw new HttpError(409, 'stock-limit', `product ${id} would hold more than ${PRODUCT_MAX_UNITS} units`, {
          productId: id,
          initial: after.initial,
          max: PRODUCT_MAX_UNITS,
        });
      }
      return after;
    });
    return adminView(row);
  }

  /** The stock counters of every product, ordered by id. */
  async stockPage(afterId: string | null, limit: number): Promise<Page<StockLine>> {
    let q = this.db
      .selectFrom('products')
      .select(['id', 'initial', 'available', 'reserved', 'sold'])
      .orderBy('id')
      .limit(limit + 1);
    if (afterId !== null) q = q.where('id', '>', afterId);
    const { page, nextCursor } = paginate(await q.execute(), limit, (r) => r.id);
    return { items: page.map(stockLine), nextCursor };
  }
}
