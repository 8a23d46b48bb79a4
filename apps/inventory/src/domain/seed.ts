/**
 * Demo products, deterministic: the same count always gives the same ids, names and prices.
 * Ids are p-0001, p-0002, … zero-padded to 4 digits (wider when there are more than 9999).
 */
import { SEED_STOCK_UNITS } from './limits.js';

export interface SeedProduct {
  id: string;
  name: string;
  price: number;
  stock: number;
}

const ADJECTIVES = [
  'Classic',
  'Compact',
  'Sturdy',
  'Vintage',
  'Modern',
  'Rustic',
  'Deluxe',
  'Handmade',
  'Portable',
  'Quiet',
  'Bright',
  'Cozy',
  'Sleek',
  'Rugged',
  'Tiny',
  'Grand',
];
const MATERIALS = ['Oak', 'Steel', 'Linen', 'Ceramic', 'Walnut', 'Copper', 'Wool', 'Glass', 'Bamboo', 'Leather', 'Marble', 'Cotton', 'Brass'];
const NOUNS = [
  'Lamp',
  'Chair',
  'Mug',
  'Backpack',
  'Notebook',
  'Kettle',
  'Blanket',
  'Clock',
  'Speaker',
  'Vase',
  'Desk',
  'Scarf',
  'Bottle',
  'Planter',
  'Pen',
  'Tray',
  'Stool',
];

/** A 32-bit integer hash (lowbias32), so prices look varied but never change. */
export function hash32(n: number): number {
  let x = n >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

export function seedProductId(index: number, count: number): string {
  const width = Math.max(4, String(count).length);
  return `p-${String(index).padStart(width, '0')}`;
}

/** The `index`-th demo product (1-based) of `count`. Prices are 1.00 … 99.99, mostly ending in .99. */
export function seedProduct(index: number, count: number): SeedProduct {
  const h = hash32(index);
  const pick = <T>(list: readonly T[], salt: number): T => list[hash32(h ^ salt) % list.length] as T;
  const whole = 1 + (h % 99); // 1 … 99
  const price = h % 5 === 0 ? whole * 100 : whole * 100 + 99; // 100 … 9999 cents
  return { id: seedProductId(index, count), name: `${pick(ADJECTIVES, 0x1)} ${pick(MATERIALS, 0x2)} ${pick(NOUNS, 0x3)}`, price, stock: SEED_STOCK_UNITS };
}

/** Demo products `from` … `to` (1-based, inclusive) of `count`: callers take them in chunks. */
export function seedProducts(count: number, from = 1, to = count): SeedProduct[] {
  const out: SeedProduct[] = [];
  for (let i = Math.max(1, from); i <= Math.min(to, count); i++) out.push(seedProduct(i, count));
  return out;
}
