/**
 * The inventory service: products, stock counters and reservations (CP: one relational store,
 * transactions, nothing ever negative). Several instances may share one database.
 */
import { Guard, openServiceStore, runService } from '@concord/platform';
import { inventoryConfig } from './config.js';
import type { InventoryDb } from './db.js';
import { migrations } from './migrations.js';
import { Products } from './products.js';
import { Reservations } from './reservations.js';
import { adminRoutes } from './routes/admin.js';
import { internalRoutes } from './routes/internal.js';
import { publicRoutes } from './routes/public.js';
import { seedOnce } from './seeding.js';
import { Sweeper } from './sweeper.js';

const SWEEP_BATCH = 200;

runService({
  name: 'inventory',
  config: inventoryConfig,
  dependsOn: ['user'],
  async setup(ctx) {
    const store = await openServiceStore<InventoryDb>(ctx, migrations);
    const seeded = await seedOnce(store, ctx.config.seedProducts, Date.now());
    if (seeded > 0) ctx.log.info({ products: seeded }, 'seeded demo products');

    const products = new Products(store);
    const reservations = new Reservations(store);
    const guard = ctx.registry ? Guard.viaMesh(ctx.mesh) : null;
    publicRoutes(ctx.app, products);
    adminRoutes(ctx.app, products, guard);
    internalRoutes(ctx.app, products, reservations, { defaultTtlMs: ctx.config.reservationTtlMs, store });

    const sweeper = new Sweeper({ reservations, log: ctx.log, intervalMs: ctx.config.sweepIntervalMs, batchSize: SWEEP_BATCH });
    sweeper.start();
    ctx.onClose(() => sweeper.stop());
  },
});
