/**
 * Every bound of the inventory service, in one place. Units are in the names.
 */

/** Product ids: what POST /api/admin/products accepts. */
export const PRODUCT_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';
export const PRODUCT_ID_MAX_CHARS = 64;
/** Reservation and order ids (chosen by the order service: uuids, `<order>:<step>`, …). */
export const RESERVATION_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$';
export const ORDER_ID_PATTERN = RESERVATION_ID_PATTERN;

export const PRODUCT_NAME_MAX_CHARS = 200;
export const PRICE_MIN_CENTS = 1;
export const PRICE_MAX_CENTS = 10_000_000;
export const STOCK_MAX_UNITS = 1_000_000;
/** `initial` of one product never exceeds this (keeps every counter in a 32-bit integer column). */
export const PRODUCT_MAX_UNITS = 1_000_000_000;

export const RESERVATION_MAX_ITEMS = 100;
export const ITEM_MAX_QUANTITY = 10_000;
export const RESERVATION_TTL_MIN_MS = 1000;
export const RESERVATION_TTL_MAX_MS = 3_600_000;

export const PUBLIC_PAGE_DEFAULT = 20;
export const PUBLIC_PAGE_MAX = 100;
export const ADMIN_PAGE_DEFAULT = 1000;
export const ADMIN_PAGE_MAX = 10_000;
export const LOOKUP_MAX_IDS = 100;

export const SEED_MAX_PRODUCTS = 100_000;
export const SEED_STOCK_UNITS = 1000;
