/**
 * Every bound of the payment service, in one place. Money is integer cents.
 */

/** What every new wallet holds, once: 10000.00 (API.md). */
export const INITIAL_BALANCE_CENTS = 1_000_000;
/** The largest single charge or refund accepted. */
export const MAX_AMOUNT_CENTS = 1_000_000_000_000;

/** Ids chosen by callers: user ids, order ids, charge ids, refund ids (uuids, `<order>:<step>`, …). */
export const ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$';
export const ID_MAX_CHARS = 128;
