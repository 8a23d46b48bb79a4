import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Catalog, type ServiceSpec } from '../src/registry/catalog.js';

function spec(id: string, over: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    id,
    name: 'web',
    address: '127.0.0.1',
    port: 1000,
    tags: ['v1'],
    meta: {},
    weights: { Passing: 1, Warning: 1 },
    checks: [{ checkId: `service:${id}`, name: 'c', type: 'http', http: 'http://x/health', intervalMs: 1000, timeoutMs: 500, deregisterAfterMs: 5000, definition: {} }],
    ...over,
  };
}

test('a new HTTP check starts critical and the service index moves on registration', () => {
  const c = new Catalog();
  const before = c.indexOf('web');
  assert.deepEqual(c.register(spec('a'), 0), ['web']);
  assert.ok(c.indexOf('web') > before);
  assert.equal(Catalog.aggregate(c.service('a')!.checks), 'critical');
});

test('the index moves on status changes only, not on repeated identical results', () => {
  const c = new Catalog();
  c.register(spec('a'), 0);
  const i1 = c.indexOf('web');
  assert.deepEqual(c.updateCheck('service:a', 'passing', 'ok', 1), ['web']);
  const i2 = c.indexOf('web');
  assert.ok(i2 > i1);
  assert.deepEqual(c.updateCheck('service:a', 'passing', 'ok', 2), []);
  assert.equal(c.indexOf('web'), i2);
});

test('re-registration keeps the check status (a restarted client does not flap)', () => {
  const c = new Catalog();
  c.register(spec('a'), 0);
  c.updateCheck('service:a', 'passing', 'ok', 1);
  c.register(spec('a', { port: 2000 }), 2);
  assert.equal(c.service('a')!.port, 2000);
  assert.equal(c.service('a')!.checks[0]!.status, 'passing');
});

test('TTL checks expire to critical after their TTL', () => {
  const c = new Catalog();
  c.register(spec('t', { checks: [{ checkId: 'ttl1', name: 't', type: 'ttl', ttlMs: 1000, definition: {} }] }), 0);
  c.updateCheck('ttl1', 'passing', '', 0);
  assert.deepEqual(c.expireTtl(999), []);
  assert.deepEqual(c.expireTtl(1000), ['web']);
  assert.equal(c.getCheck('ttl1')!.status, 'critical');
});

test('a service critical longer than DeregisterCriticalServiceAfter is reaped, not before', () => {
  const c = new Catalog();
  c.register(spec('a'), 0);
  c.updateCheck('service:a', 'passing', '', 100);
  c.updateCheck('service:a', 'critical', 'down', 1000);
  assert.deepEqual(c.reap(5999), []);
  assert.deepEqual(c.reap(6000), [{ id: 'a', name: 'web' }]);
  assert.equal(c.service('a'), undefined);
});

test('deregistration removes the instance and moves the index', () => {
  const c = new Catalog();
  c.register(spec('a'), 0);
  const i = c.indexOf('web');
  assert.deepEqual(c.deregister('a'), ['web']);
  assert.ok(c.indexOf('web') > i);
  assert.deepEqual(c.deregister('a'), []);
  assert.deepEqual(c.instancesOf('web'), []);
});

test('snapshot and restore keep instances and move the index forward', () => {
  const c = new Catalog();
  c.register(spec('a'), 0);
  c.updateCheck('service:a', 'passing', '', 1);
  const snap = JSON.parse(JSON.stringify(c.snapshot()));
  const d = new Catalog();
  d.restore(snap, 10);
  assert.equal(d.service('a')!.checks[0]!.status, 'passing');
  assert.ok(d.index > c.index);
  assert.ok(d.indexOf('web') > c.indexOf('web'));
});

test('aggregate status: critical beats warning beats passing', () => {
  const mk = (status: 'passing' | 'warning' | 'critical') => ({ status }) as never;
  assert.equal(Catalog.aggregate([mk('passing'), mk('warning')]), 'warning');
  assert.equal(Catalog.aggregate([mk('warning'), mk('critical')]), 'critical');
  assert.equal(Catalog.aggregate([]), 'passing');
});

test('timeouts count towards FailuresBeforeCritical; a refusal is critical at once', () => {
  const c = new Catalog();
  const s = spec('a');
  s.checks[0]!.failuresBeforeCritical = 3;
  c.register(s, 0);
  c.updateCheck('service:a', 'passing', 'ok', 1);
  assert.deepEqual(c.updateCheck('service:a', 'critical', 'timed out', 2, true), []);
  assert.deepEqual(c.updateCheck('service:a', 'critical', 'timed out', 3, true), []);
  assert.equal(c.getCheck('service:a')!.status, 'passing', 'a busy instance stays in rotation');
  assert.deepEqual(c.updateCheck('service:a', 'critical', 'timed out', 4, true), ['web']);
  assert.equal(c.getCheck('service:a')!.status, 'critical');
  c.updateCheck('service:a', 'passing', 'ok', 5);
  c.updateCheck('service:a', 'critical', 'timed out', 6, true);
  c.updateCheck('service:a', 'passing', 'ok', 7);
  c.updateCheck('service:a', 'critical', 'timed out', 8, true);
  assert.equal(c.getCheck('service:a')!.status, 'passing', 'a success resets the count');
  assert.deepEqual(c.updateCheck('service:a', 'critical', 'ECONNREFUSED', 9), ['web']);
});
