/**
 * The payment service: wallets, charges and refunds, each applied exactly once by key.
 * See routes.ts for the HTTP surface and domain/charges.ts for the rules.
 */
import { Guard, openServiceStore, runService } from '@concord/platform';
import type { PaymentDb } from './db.js';
import { moneyConserved } from './domain/charges.js';
import { migrations } from './migrations.js';
import { Payments } from './payments.js';
import { paymentRoutes } from './routes.js';

runService({
  name: 'payment',
  dependsOn: ['user'],
  async setup(ctx) {
    const store = await openServiceStore<PaymentDb>(ctx, migrations);
    const payments = new Payments(store, ctx.faults);
    paymentRoutes(ctx.app, payments, Guard.viaMesh(ctx.mesh), store);
    const summary = await payments.summary();
    if (!moneyConserved(summary)) ctx.log.error({ summary }, 'money is not conserved: totalDeposited != totalBalance + charged - refunded');
    else ctx.log.info({ summary }, 'payment ledger balanced');
  },
});
