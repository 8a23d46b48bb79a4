/**
 * The points service: a ledger of awards and revokes, each applied exactly once by key, and
 * the balances they add up to. See routes.ts for the HTTP surface and domain/ledger.ts for the rules.
 */
import { Guard, openServiceStore, runService } from '@concord/platform';
import type { PointsDb } from './db.js';
import { migrations } from './migrations.js';
import { Points } from './points.js';
import { pointsRoutes } from './routes.js';

runService({
  name: 'points',
  dependsOn: ['user'],
  async setup(ctx) {
    const store = await openServiceStore<PointsDb>(ctx, migrations);
    pointsRoutes(ctx.app, new Points(store, ctx.faults), Guard.viaMesh(ctx.mesh), store);
  },
});
