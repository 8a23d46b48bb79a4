/**
 * Request schemas (TypeBox → JSON Schema). Bodies are validated strictly (no coercion, no
 * unknown fields); query strings and params are coerced from strings, unknown fields refused.
 */
import { type Static, Type } from '@sinclair/typebox';
import {
  ADMIN_PAGE_DEFAULT,
  ADMIN_PAGE_MAX,
  ITEM_MAX_QUANTITY,
  LOOKUP_MAX_IDS,
  ORDER_ID_PATTERN,
  PRICE_MAX_CENTS,
  PRICE_MIN_CENTS,
  PRODUCT_ID_MAX_CHARS,
  PRODUCT_ID_PATTERN,
  PRODUCT_NAME_MAX_CHARS,
  PUBLIC_PAGE_DEFAULT,
  PUBLIC_PAGE_MAX,
  RESERVATION_ID_PATTERN,
  RESERVATION_MAX_ITEMS,
  RESERVATION_TTL_MAX_MS,
  RESERVATION_TTL_MIN_MS,
  STOCK_MAX_UNITS,
} from './domain/limits.js';

const strict = { additionalProperties: false } as const;

export const ProductId = Type.String({ pattern: PRODUCT_ID_PATTERN, maxLength: PRODUCT_ID_MAX_CHARS });
export const ReservationId = Type.String({ pattern: RESERVATION_ID_PATTERN, maxLength: 128 });
const OrderId = Type.String({ pattern: ORDER_ID_PATTERN, maxLength: 128 });
/** Length is checked by the cursor decoder; this bound only keeps garbage small. */
const Cursor = Type.String({ maxLength: 200 });

function pageQuery(defaultLimit: number, maxLimit: number) {
  return Type.Object({ limit: Type.Integer({ minimum: 1, maximum: maxLimit, default: defaultLimit }), cursor: Type.Optional(Cursor) }, strict);
}

export const PublicPageQuery = pageQuery(PUBLIC_PAGE_DEFAULT, PUBLIC_PAGE_MAX);
export const AdminPageQuery = pageQuery(ADMIN_PAGE_DEFAULT, ADMIN_PAGE_MAX);
export type PageQuery = Static<typeof PublicPageQuery>;

export const ProductParams = Type.Object({ id: ProductId }, strict);
export const ReservationParams = Type.Object({ id: ReservationId }, strict);

export const CreateProductBody = Type.Object(
  {
    id: ProductId,
    name: Type.String({ minLength: 1, maxLength: PRODUCT_NAME_MAX_CHARS, pattern: '\\S' }),
    price: Type.Integer({ minimum: PRICE_MIN_CENTS, maximum: PRICE_MAX_CENTS }),
    stock: Type.Integer({ minimum: 0, maximum: STOCK_MAX_UNITS }),
  },
  strict,
);

export const AddStockBody = Type.Object({ quantity: Type.Integer({ minimum: 1, maximum: STOCK_MAX_UNITS }) }, strict);

/** `ids=a,b,c`: split and checked by the route (at most LOOKUP_MAX_IDS ids). */
export const LookupQuery = Type.Object({ ids: Type.String({ minLength: 1, maxLength: LOOKUP_MAX_IDS * (PRODUCT_ID_MAX_CHARS + 1) }) }, strict);

export const ReserveBody = Type.Object(
  {
    reservationId: ReservationId,
    orderId: OrderId,
    items: Type.Array(Type.Object({ productId: ProductId, quantity: Type.Integer({ minimum: 1, maximum: ITEM_MAX_QUANTITY }) }, strict), {
      minItems: 1,
      maxItems: RESERVATION_MAX_ITEMS,
    }),
    ttlMs: Type.Optional(Type.Integer({ minimum: RESERVATION_TTL_MIN_MS, maximum: RESERVATION_TTL_MAX_MS })),
  },
  strict,
);
export type ReserveBody = Static<typeof ReserveBody>;

/** One item of POST /internal/batch/reservations: a reserve, or a command by reservation id. */
export const BatchReservationItem = Type.Union([
  Type.Object({ op: Type.Literal('reserve'), ...ReserveBody.properties }, strict),
  Type.Object({ op: Type.Union([Type.Literal('confirm'), Type.Literal('release'), Type.Literal('restock')]), reservationId: ReservationId }, strict),
]);
export type BatchReservationItem = Static<typeof BatchReservationItem>;
