/**
 * Product prices for pricing new orders, fetched from inventory and cached briefly (prices
 * change rarely; a miss or an expired entry asks again). Bounded in size.
 */
import { type MeshClient, type TraceContext, UpstreamError } from '@concord/platform';

const TTL_MS = 5000;
const MAX_ENTRIES = 50_000;

export class PriceCache {
  private readonly cache = new Map<string, { price: number; atMs: number }>();

  constructor(private readonly mesh: MeshClient) {}

  /** Prices of the known products among `ids` (unknown ones are absent); a lookup continues `trace`. */
  async get(ids: string[], trace?: TraceContext | null): Promise<Map<string, number>> {
    const now = Date.now();
    const out = new Map<string, number>();
    const missing: string[] = [];
    for (const id of ids) {
      const hit = this.cache.get(id);
      if (hit && now - hit.atMs < TTL_MS) out.set(id, hit.price);
      else missing.push(id);
    }
    if (missing.length === 0) return out;
    const r = await this.mesh.request<{ items: Array<{ id: string; price: number }> }>('inventory', {
      path: `/internal/products?ids=${missing.map(encodeURIComponent).join(',')}`,
      timeoutMs: 2000,
      trace,
    });
    if (r.status !== 200) throw new UpstreamError('inventory', 'reset', `inventory answered ${r.status} to a price lookup`);
    const found = new Map(r.body.items.map((p) => [p.id, p.price]));
    if (this.cache.size + missing.length > MAX_ENTRIES) this.cache.clear();
    for (const id of missing) {
      const price = found.get(id);
      // Only hits are cached: a product an admin adds is orderable at once.
      if (price === undefined) continue;
      this.cache.set(id, { price, atMs: now });
      out.set(id, price);
    }
    return out;
  }
}
