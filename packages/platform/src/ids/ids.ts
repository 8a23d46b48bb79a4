/** Row ids for this process: time-ordered UUIDv7 (see @concord/core's ids.ts for why). */
import { randomFillSync } from 'node:crypto';
import { uuid7Generator } from '@concord/core';

/** A new UUIDv7, increasing across the calls of this process. */
export const timeOrderedId: () => string = uuid7Generator({ nowMs: () => Date.now(), fill: (b) => randomFillSync(b) });
