/**
 * The gateway's routing table: every public route of API.md, the service behind it, who may
 * call it, its rate-limit group and timeout. Pure data plus a matcher.
 */
export type AuthRule = 'none' | 'user' | 'admin';
export type Group = 'auth' | 'public' | 'user' | 'admin';

export interface RouteSpec {
  method: 'GET' | 'POST';
  path: string;
  service: string;
  auth: AuthRule;
  group: Group;
  /** Upstream timeout; absent: the configured default (CONCORD_GATEWAY_UPSTREAM_TIMEOUT). */
  timeoutMs?: number;
}

/** POST /api/orders may wait for its saga (Prefer: wait up to 30 s). */
const ORDER_WAIT_TIMEOUT_MS = 35_000;

export const ROUTES: readonly RouteSpec[] = [
  { method: 'POST', path: '/api/auth/register', service: 'user', auth: 'none', group: 'auth' },
  { method: 'POST', path: '/api/auth/login', service: 'user', auth: 'none', group: 'auth' },
  { method: 'GET', path: '/.well-known/jwks.json', service: 'user', auth: 'none', group: 'public' },
  { method: 'GET', path: '/api/users/me', service: 'user', auth: 'user', group: 'user' },
  { method: 'GET', path: '/api/products', service: 'inventory', auth: 'none', group: 'public' },
  { method: 'GET', path: '/api/products/:id', service: 'inventory', auth: 'none', group: 'public' },
  { method: 'GET', path: '/api/recommendations', service: 'recommendation', auth: 'none', group: 'public' },
  { method: 'POST', path: '/api/orders', service: 'order', auth: 'user', group: 'user', timeoutMs: ORDER_WAIT_TIMEOUT_MS },
  { method: 'GET', path: '/api/orders', service: 'order', auth: 'user', group: 'user' },
  { method: 'GET', path: '/api/orders/:id', service: 'order', auth: 'user', group: 'user' },
  { method: 'POST', path: '/api/orders/:id/cancel', service: 'order', auth: 'user', group: 'user', timeoutMs: ORDER_WAIT_TIMEOUT_MS },
  { method: 'GET', path: '/api/wallet', service: 'payment', auth: 'user', group: 'user' },
  { method: 'GET', path: '/api/points', service: 'points', auth: 'user', group: 'user' },
  { method: 'POST', path: '/api/admin/products', service: 'inventory', auth: 'admin', group: 'admin' },
  { method: 'POST', path: '/api/admin/products/:id/stock', service: 'inventory', auth: 'admin', group: 'admin' },
  { method: 'GET', path: '/api/admin/inventory', service: 'inventory', auth: 'admin', group: 'admin' },
  { method: 'GET', path: '/api/admin/payments/summary', service: 'payment', auth: 'admin', group: 'admin' },
  { method: 'GET', path: '/api/admin/orders/summary', service: 'order', auth: 'admin', group: 'admin' },
  { method: 'POST', path: '/api/admin/orders/lookup', service: 'order', auth: 'admin', group: 'admin' },
  { method: 'GET', path: '/api/admin/points/summary', service: 'points', auth: 'admin', group: 'admin' },
  { method: 'GET', path: '/api/admin/users/summary', service: 'user', auth: 'admin', group: 'admin' },
  { method: 'GET', path: '/api/admin/sagas', service: 'order', auth: 'admin', group: 'admin' },
  { method: 'GET', path: '/api/admin/sagas/:id', service: 'order', auth: 'admin', group: 'admin' },
  { method: 'POST', path: '/api/admin/sagas/:id/retry', service: 'order', auth: 'admin', group: 'admin' },
];

/** Services the gateway routes to (watched from the start). */
export const UPSTREAMS = [...new Set(ROUTES.map((r) => r.service))];
