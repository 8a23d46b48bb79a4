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
    sagaStepTimeoutMs: durationVar('CONCORD_SAGA_STEP_TIMEOUT', 4000, 50, 600_000),
    sagaBackoffCapMs: durationVar('CONCORD_SAGA_BACKOFF_CAP', 2000, 1, 600_000),
    sagaMaxAttempts: intVar('CONCORD_SAGA_MAX_ATTEMPTS', 6, 1, 1000),
    sagaMaxCompensationAttempts: intVar('CONCORD_SAGA_MAX_COMPENSATION_ATTEMPTS', 30, 1, 100_000),
  },
  setup: orderRoutes,
});
