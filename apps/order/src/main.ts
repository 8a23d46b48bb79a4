/**
 * The order service: creates orders and runs their sagas; lists, gets and cancels them; serves
 * the saga admin routes.
 */
import { runService, durationVar, intVar } from '@concord/platform';
import { orderRoutes } from './routes.js';

runService({
  name: 'order',
  dependsOn: ['inventory', 'payment', 'points', 'user', 'recommendation'],
  config: {
    defaultWaitS: intVar('CONCORD_ORDER_WAIT_S', 5, 0, 60),
    idempotencyRetentionMs: durationVar('CONCORD_IDEMPOTENCY_RETENTION', 24 * 3_600_000, 24 * 3_600_000, 30 * 86_400_000),
    sagaLeaseMs: durationVar('CONCORD_SAGA_LEASE', 15_000, 1000, 600_000),
  },
  setup: orderRoutes,
});
