/** The inventory service's own variables (on top of the service kit's). */
import { durationVar, intVar } from '@concord/platform';
import { SEED_MAX_PRODUCTS } from './domain/limits.js';

export const inventoryConfig = {
  /** How long a reservation holds its stock unless a request says otherwise (`ttlMs`). */
  reservationTtlMs: durationVar('CONCORD_RESERVATION_TTL', 15 * 60_000, 1000, 24 * 3_600_000),
  /** How often the sweeper looks for overdue reservations. */
  sweepIntervalMs: durationVar('CONCORD_RESERVATION_SWEEP', 1000, 50, 600_000),
  /** Demo products created on the very first start. */
  seedProducts: intVar('CONCORD_SEED_PRODUCTS', 100, 0, SEED_MAX_PRODUCTS),
};
