import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvariantError } from '../src/assert.js';
import {
  abandon,
  acquire,
  beginRetry,
  connectionClosed,
  DEFAULT_POOL_LIMITS,
  emptyPool,
  endRetry,
  type Grant,
  inFlight,
  type PoolLimits,
  type PoolState,
  poolLimits,
  release,
} from '../src/mesh/pool.js';
import { mulberry32 } from './mesh-helpers.js';

test('limits from connectionPool settings; unset or <= 0 means Concord’s finite default; 0 requests per connection = unlimited', () => {
  assert.deepEqual(poolLimits(undefined), DEFAULT_POOL_LIMITS);
  assert.deepEqual(poolLimits({ maxConnections: 1, http1MaxPendingRequests: 2, http2MaxRequests: 3, maxRequestsPerConnection: 4, maxRetries: 5 }), {
    maxConnections: 1,
    maxPending: 2,
    maxRequests: 3,
    maxRequestsPerConnection: 4,
    maxRetries: 5,
  });
  const zero = poolLimits({ maxConnections: 0, http1MaxPendingRequests: -1, maxRequestsPerConnection: 0 });
  assert.equal(zero.maxConnections, DEFAULT_POOL_LIMITS.maxConnections);
  assert.equal(zero.maxPending, DEFAULT_POOL_LIMITS.maxPending);
  assert.equal(zero.maxRequestsPerConnection, Number.POSITIVE_INFINITY);
});

test('Istio’s circuit-breaker example: 1 connection, 1 pending → dispatch, queue, then 503 at once', () => {
  const limits = poolLimits({ maxConnections: 1, http1MaxPendingRequests: 1 });
  let s = emptyPool();
  let g: Grant;
  ({ state: s, grant: g } = acquire(limits, s, 'p1'));
  assert.deepEqual(g, { kind: 'dispatch', connectionId: 1, open: true });
  ({ state: s, grant: g } = acquire(limits, s, 'p1'));
  assert.deepEqual(g, { kind: 'queue' });
  ({ state: s, grant: g } = acquire(limits, s, 'p1'));
  assert.deepEqual(g, { kind: 'reject', reason: 'max-pending' });
  assert.equal(inFlight(s, 'p1'), 2);
  // The first request ends: the queued one takes over the same keep-alive connection.
  const r = release(limits, s, 'p1', 1);
  assert.deepEqual({ close: r.close, next: r.next }, { close: false, next: { connectionId: 1, open: false } });
  s = r.state;
  assert.equal(s.pending, 0);
  assert.equal(s.active, 1);
  const done = release(limits, s, 'p1', 1);
  assert.deepEqual({ close: done.close, next: done.next }, { close: false, next: null });
  // The idle connection is reused.
  assert.deepEqual(acquire(limits, done.state, 'p1').grant, { kind: 'dispatch', connectionId: 1, open: false });
});

test('maxConnections is per endpoint; pending is counted destination-wide', () => {
  const limits = poolLimits({ maxConnections: 1, http1MaxPendingRequests: 1 });
  let s = emptyPool();
  let g: Grant;
  ({ state: s, grant: g } = acquire(limits, s, 'p1'));
  assert.equal(g.kind, 'dispatch');
  ({ state: s, grant: g } = acquire(limits, s, 'p2'));
  assert.equal(g.kind, 'dispatch');
  ({ state: s, grant: g } = acquire(limits, s, 'p2'));
  assert.equal(g.kind, 'queue');
  ({ state: s, grant: g } = acquire(limits, s, 'p1'));
  assert.deepEqual(g, { kind: 'reject', reason: 'max-pending' });
});

test('http2MaxRequests bounds requests in flight destination-wide', () => {
  const limits = poolLimits({ http2MaxRequests: 2 });
  let s = emptyPool();
  ({ state: s } = acquire(limits, s, 'a'));
  ({ state: s } = acquire(limits, s, 'b'));
  assert.deepEqual(acquire(limits, s, 'c').grant, { kind: 'reject', reason: 'max-requests' });
});

test('maxRequestsPerConnection closes a connection after that many requests; a queued request then gets a new one', () => {
  const limits = poolLimits({ maxConnections: 1, maxRequestsPerConnection: 2 });
  let s = emptyPool();
  ({ state: s } = acquire(limits, s, 'a'));
  ({ state: s } = acquire(limits, s, 'a')); // queued
  let r = release(limits, s, 'a', 1);
  assert.deepEqual({ close: r.close, next: r.next }, { close: false, next: { connectionId: 1, open: false } });
  r = release(limits, r.state, 'a', 1);
  assert.equal(r.close, true, 'second request on connection 1');
  assert.equal(r.next, null);
  assert.equal(r.state.endpoints.size, 0, 'an endpoint with nothing left is dropped from the state');
  // With one request per connection (no keep-alive) the queued request opens a fresh connection.
  const noKeepAlive = poolLimits({ maxConnections: 1, maxRequestsPerConnection: 1 });
  let t = emptyPool();
  ({ state: t } = acquire(noKeepAlive, t, 'a'));
  ({ state: t } = acquire(noKeepAlive, t, 'a'));
  const x = release(noKeepAlive, t, 'a', 1);
  assert.deepEqual({ close: x.close, next: x.next }, { close: true, next: { connectionId: 2, open: true } });
});

test('a connection that cannot be reused is closed; an idle one closing hands a queued request a new connection', () => {
  const limits = poolLimits({ maxConnections: 2 });
  let s = emptyPool();
  ({ state: s } = acquire(limits, s, 'a')); // conn 1
  ({ state: s } = acquire(limits, s, 'a')); // conn 2
  let r = release(limits, s, 'a', 2);
  s = r.state; // conn 2 idle
  r = release(limits, s, 'a', 1, { reusable: false });
  assert.equal(r.close, true);
  s = r.state;
  assert.equal(s.endpoints.get('a')?.connections.length, 1);
  // Fill up again and queue one, then the idle... (none idle now: conn 2 is reused first)
  let g: Grant;
  ({ state: s, grant: g } = acquire(limits, s, 'a'));
  assert.deepEqual(g, { kind: 'dispatch', connectionId: 2, open: false });
  ({ state: s, grant: g } = acquire(limits, s, 'a'));
  assert.deepEqual(g, { kind: 'dispatch', connectionId: 3, open: true });
  ({ state: s, grant: g } = acquire(limits, s, 'a'));
  assert.deepEqual(g, { kind: 'queue' });
  s = abandon(s, 'a');
  assert.equal(s.pending, 0);
  ({ state: s } = release(limits, s, 'a', 3));
  const c = connectionClosed(limits, s, 'a', 3);
  assert.equal(c.next, null);
  assert.equal(c.state.endpoints.get('a')?.connections.length, 1);
  // Idle close with a request queued behind a full endpoint.
  let q = emptyPool();
  const one = poolLimits({ maxConnections: 1 });
  ({ state: q } = acquire(one, q, 'b'));
  ({ state: q } = release(one, q, 'b', 1));
  assert.equal(connectionClosed(one, q, 'b', 1).state.endpoints.size, 0);
});

test('the retry breaker: at most maxRetries retries outstanding', () => {
  const limits = poolLimits({ maxRetries: 2 });
  let s = emptyPool();
  let ok: boolean;
  ({ state: s, allowed: ok } = beginRetry(limits, s));
  assert.ok(ok);
  ({ state: s, allowed: ok } = beginRetry(limits, s));
  assert.ok(ok);
  ({ state: s, allowed: ok } = beginRetry(limits, s));
  assert.equal(ok, false);
  s = endRetry(s);
  assert.equal(beginRetry(limits, s).allowed, true);
  assert.throws(() => endRetry(emptyPool()), InvariantError);
});

test('states are immutable values; shell bugs are refused loudly', () => {
  const limits = poolLimits({});
  const s0 = emptyPool();
  const { state: s1 } = acquire(limits, s0, 'a');
  assert.equal(s0.active, 0);
  assert.equal(s0.endpoints.size, 0);
  assert.equal(s1.active, 1);
  release(limits, s1, 'a', 1);
  assert.equal(s1.endpoints.get('a')?.connections[0]?.busy, true);
  assert.throws(() => release(limits, s0, 'a', 1), InvariantError);
  assert.throws(() => release(limits, s1, 'a', 99), InvariantError);
  assert.throws(() => connectionClosed(limits, s1, 'a', 1), InvariantError, 'a busy connection is released, not closed');
  assert.throws(() => abandon(s1, 'a'), InvariantError);
});

function checkInvariants(limits: PoolLimits, s: PoolState): void {
  let busy = 0;
  let queued = 0;
  for (const [id, ep] of s.endpoints) {
    assert.ok(ep.connections.length <= limits.maxConnections, `${id}: ${ep.connections.length} connections`);
    assert.ok(ep.connections.length > 0 || ep.queued > 0, `${id}: empty endpoint kept`);
    if (ep.queued > 0)
      assert.ok(
        ep.connections.every((c) => c.busy),
        `${id}: idle connection while requests queue`,
      );
    busy += ep.connections.filter((c) => c.busy).length;
    queued += ep.queued;
  }
  assert.equal(s.active, busy);
  assert.equal(s.pending, queued);
  assert.ok(s.active <= limits.maxRequests);
  assert.ok(s.pending <= limits.maxPending);
}

test('property: random traffic never breaks the pool’s limits or its bookkeeping', () => {
  const random = mulberry32(77);
  const limits = poolLimits({ maxConnections: 3, http1MaxPendingRequests: 4, http2MaxRequests: 7, maxRequestsPerConnection: 3 });
  let s = emptyPool();
  const running: Array<{ ep: string; conn: number }> = [];
  const waiting: string[] = [];
  let rejected = 0;
  for (let step = 0; step < 20000; step++) {
    const r = random();
    if (r < 0.5) {
      const ep = `e${Math.floor(random() * 3)}`;
      const out = acquire(limits, s, ep);
      s = out.state;
      if (out.grant.kind === 'dispatch') running.push({ ep, conn: out.grant.connectionId });
      else if (out.grant.kind === 'queue') waiting.push(ep);
      else rejected++;
    } else if (r < 0.9 && running.length > 0) {
      const [job] = running.splice(Math.floor(random() * running.length), 1);
      const out = release(limits, s, job!.ep, job!.conn, { reusable: random() > 0.1 });
      s = out.state;
      if (out.next) {
        const i = waiting.indexOf(job!.ep);
        assert.ok(i >= 0, 'a handoff only happens when that endpoint has someone waiting');
        waiting.splice(i, 1);
        running.push({ ep: job!.ep, conn: out.next.connectionId });
      }
    } else if (waiting.length > 0) {
      const [ep] = waiting.splice(Math.floor(random() * waiting.length), 1);
      s = abandon(s, ep!);
    }
    checkInvariants(limits, s);
  }
  assert.ok(rejected > 0, 'the limits were exercised');
});
