import assert from 'node:assert/strict';
import { test } from 'node:test';
import { authorize, matchesValue, peerAuthenticationMode } from '../src/mesh/authz.js';
import type { AuthorizationPolicy, PeerAuthentication } from '../src/mesh/types.js';

const ORDER = 'concord.local/ns/default/sa/order';
const GATEWAY = 'concord.local/ns/default/sa/gateway';
const payment = { app: 'payment', version: 'v1' };
const rq = (principal: string | null, method = 'POST', path = '/charges') => ({ principal, method, path });

test('values: exact, prefix*, *suffix, * (present); case-sensitive; null never matches', () => {
  assert.ok(matchesValue('/charges', '/charges'));
  assert.ok(!matchesValue('/charges', '/charges/1'));
  assert.ok(matchesValue('/charges*', '/charges'));
  assert.ok(matchesValue('/charges*', '/charges/1'));
  assert.ok(matchesValue('*/refund', '/charges/1/refund'));
  assert.ok(matchesValue('*/refund', '/refund'));
  assert.ok(matchesValue('*', 'x'));
  assert.ok(!matchesValue('*', ''));
  assert.ok(!matchesValue('*', null));
  assert.ok(!matchesValue('GET', 'get'));
});

test('no policies: allow; a DENY that matches wins over any ALLOW', () => {
  assert.deepEqual(authorize([], payment, rq(null)), { allowed: true, reason: 'no-allow-policy' });
  const policies: AuthorizationPolicy[] = [
    { name: 'allow-all', action: 'ALLOW', rules: [{}] },
    { name: 'deny-refunds', action: 'DENY', rules: [{ to: [{ paths: ['*/refund'] }] }] },
  ];
  assert.deepEqual(authorize(policies, payment, rq(ORDER, 'POST', '/charges/7/refund?x=1')), {
    allowed: false,
    reason: 'deny-matched',
    policy: 'deny-refunds',
  });
  assert.deepEqual(authorize(policies, payment, rq(ORDER)), { allowed: true, reason: 'allow-matched', policy: 'allow-all' });
});

test('ALLOW policies present and none matches: deny; a DENY that does not match leaves the default allow', () => {
  const allowOrder: AuthorizationPolicy = {
    name: 'only-order',
    selector: { app: 'payment' },
    action: 'ALLOW',
    rules: [{ from: [{ principals: [ORDER] }], to: [{ methods: ['POST'], paths: ['/charges*'] }] }],
  };
  assert.equal(authorize([allowOrder], payment, rq(ORDER)).allowed, true);
  assert.deepEqual(authorize([allowOrder], payment, rq(GATEWAY)), { allowed: false, reason: 'no-allow-matched' });
  assert.equal(authorize([allowOrder], payment, rq(ORDER, 'DELETE')).allowed, false);
  assert.equal(authorize([allowOrder], payment, rq(null)).allowed, false, 'plaintext has no principal');
  const denyGet: AuthorizationPolicy = { name: 'no-get', action: 'DENY', rules: [{ to: [{ methods: ['GET'] }] }] };
  assert.deepEqual(authorize([denyGet], payment, rq(null, 'POST')), { allowed: true, reason: 'no-allow-policy' });
});

test('policies whose selector does not match the workload do not apply', () => {
  const denyInventory: AuthorizationPolicy = { name: 'deny-inv', selector: { app: 'inventory' }, action: 'DENY', rules: [{}] };
  const allowNothingForInventory: AuthorizationPolicy = { name: 'allow-nothing', selector: { app: 'inventory' }, action: 'ALLOW', rules: [] };
  assert.equal(authorize([denyInventory, allowNothingForInventory], payment, rq(null)).allowed, true);
  assert.equal(authorize([allowNothingForInventory], { app: 'inventory' }, rq(ORDER)).allowed, false, 'an ALLOW policy without rules denies all');
  assert.equal(authorize([{ name: 'deny-nothing', action: 'DENY', rules: [] }], payment, rq(ORDER)).allowed, true, 'a DENY without rules matches nothing');
});

test('not* fields: notPrincipals ["*"] matches plaintext; notPaths / notMethods exclude', () => {
  const denyPlaintext: AuthorizationPolicy = { name: 'require-mtls', action: 'DENY', rules: [{ from: [{ notPrincipals: ['*'] }] }] };
  assert.equal(authorize([denyPlaintext], payment, rq(null)).allowed, false);
  assert.equal(authorize([denyPlaintext], payment, rq(ORDER)).allowed, true);
  const allow: AuthorizationPolicy = {
    name: 'reads-except-admin',
    action: 'ALLOW',
    rules: [{ to: [{ notMethods: ['POST', 'DELETE'], notPaths: ['/admin*'] }] }],
  };
  assert.equal(authorize([allow], payment, rq(null, 'GET', '/charges')).allowed, true);
  assert.equal(authorize([allow], payment, rq(null, 'GET', '/admin/x')).allowed, false);
  assert.equal(authorize([allow], payment, rq(null, 'POST', '/charges')).allowed, false);
});

test('a rule needs its from AND its to; several sources / operations are ORed', () => {
  const p: AuthorizationPolicy = {
    name: 'p',
    action: 'ALLOW',
    rules: [{ from: [{ principals: [ORDER] }, { principals: ['*/sa/gateway'] }], to: [{ methods: ['GET'] }, { paths: ['/health'] }] }],
  };
  assert.equal(authorize([p], payment, rq(GATEWAY, 'GET', '/x')).allowed, true);
  assert.equal(authorize([p], payment, rq(ORDER, 'POST', '/health')).allowed, true);
  assert.equal(authorize([p], payment, rq(ORDER, 'POST', '/x')).allowed, false);
  assert.equal(authorize([p], payment, rq('concord.local/ns/default/sa/points', 'GET', '/x')).allowed, false);
});

test('PeerAuthentication: selector-specific beats mesh-wide, default PERMISSIVE, ties by name', () => {
  const meshWide: PeerAuthentication = { name: 'default', mode: 'STRICT' };
  const paymentOnly: PeerAuthentication = { name: 'payment', selector: { app: 'payment' }, mode: 'PERMISSIVE' };
  assert.deepEqual(peerAuthenticationMode([], payment), { mode: 'PERMISSIVE' });
  assert.deepEqual(peerAuthenticationMode([meshWide], payment), { mode: 'STRICT', policy: 'default' });
  assert.deepEqual(peerAuthenticationMode([meshWide, paymentOnly], payment), { mode: 'PERMISSIVE', policy: 'payment' });
  assert.deepEqual(peerAuthenticationMode([paymentOnly, meshWide], { app: 'order' }), { mode: 'STRICT', policy: 'default' });
  const b: PeerAuthentication = { name: 'b', selector: { app: 'payment' }, mode: 'DISABLE' };
  const a: PeerAuthentication = { name: 'a', selector: { version: 'v1' }, mode: 'STRICT' };
  assert.deepEqual(peerAuthenticationMode([b, a], payment), { mode: 'STRICT', policy: 'a' });
  assert.deepEqual(peerAuthenticationMode([{ name: 'empty-selector', selector: {}, mode: 'DISABLE' }], payment), { mode: 'DISABLE', policy: 'empty-selector' });
});
