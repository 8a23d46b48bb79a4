/** The inventory database, as Kysely sees it (see migrations.ts). */
export interface ProductRow {
  id: string;
  name: string;
  /** Cents. */
  price: number;
  /** Every unit ever added: initial = available + reserved + sold. */
  initial: number;
  available: number;
  reserved: number;
  sold: number;
  created_at: string;
  updated_at: string;
}

export interface ReservationRow {
  id: string;
  /** null for a tombstone (released before it was ever reserved). */
  order_id: string | null;
  status: string;
  /** ms since epoch; null for a tombstone. bigint: PostgreSQL hands it back as a string. */
  expires_at_ms: number | string | null;
  created_at: string;
  updated_at: string;
}

export interface ReservationItemRow {
  reservation_id: string;
  product_id: string;
  quantity: number;
}

export interface MetaRow {
  name: string;
  value: string;
}

export interface InventoryDb {
  products: ProductRow;
  reservations: ReservationRow;
  reservation_items: ReservationItemRow;
  inventory_meta: MetaRow;
}
