/** Row ids for this process: time-ordered UUIDv7 (see @concord/core's ids.ts for why). */
import { randomFillSync } from 'node:crypto';
import { uuid7Generator } from '@concord/core';

/** Random bytes drawn from the system 4 KiB at a time (one call per id cost more than the id). */
const POOL_BYTES = 4096;
const pool = new Uint8Array(POOL_BYTES);
let used = POOL_BYTES;

function fill(bytes: Uint8Array): void {
  if (used + bytes.length > POOL_BYTES) {
    randomFillSync(pool);
    used = 0;
  }
  bytes.set(pool.subarray(used, used + bytes.length));
  used += bytes.length;
}

/** A new UUIDv7, increasing across the calls of this process. */
export const timeOrderedId: () => string = uuid7Generator({ nowMs: () => Date.now(), fill });
