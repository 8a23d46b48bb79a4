/**
 * Every bound of the points service, in one place.
 */

/** The most points a single award or revoke moves. */
export const MAX_POINTS = 1_000_000_000;

/** Ids chosen by callers: entry keys, user ids, order ids (uuids, `<order>:<step>`, …). */
export const ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$';
export const ID_MAX_CHARS = 128;
