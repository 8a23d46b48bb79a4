import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRegistration } from '../src/registry/validate.js';

function errorsOf(body: unknown) {
  const r = parseRegistration(body, '127.0.0.1');
  assert.equal(r.ok, false, `expected ${JSON.stringify(body)} to be refused`);
  return r.ok ? [] : r.errors;
}

test('a Consul registration with an HTTP check parses, keys case-insensitively', () => {
  const r = parseRegistration(
    { name: 'web', ID: 'web-1', Port: 8080, Tags: ['v1'], Meta: { version: 'v1' }, Check: { HTTP: 'http://127.0.0.1:8080/h', Interval: '10s', Timeout: '1s', DeregisterCriticalServiceAfter: '1m' } },
    '127.0.0.1',
  );
  assert.ok(r.ok);
  if (!r.ok) return;
  assert.equal(r.spec.id, 'web-1');
  assert.equal(r.spec.checks[0]!.checkId, 'service:web-1');
  assert.equal(r.spec.checks[0]!.intervalMs, 10_000);
  assert.equal(r.spec.checks[0]!.deregisterAfterMs, 60_000);
});

test('several checks get Consul ids service:<id>:<n>; ID defaults to Name', () => {
  const r = parseRegistration({ Name: 'web', Checks: [{ TTL: '10s' }, { HTTP: 'http://x/h', Interval: '1s' }] }, '127.0.0.1');
  assert.ok(r.ok);
  if (!r.ok) return;
  assert.deepEqual(r.spec.checks.map((c) => c.checkId), ['service:web:1', 'service:web:2']);
  assert.equal(r.spec.checks[1]!.timeoutMs, 1000, 'timeout defaults to min(10s, interval)');
});

test('missing Name is named in the error', () => {
  assert.deepEqual(errorsOf({ Port: 80 }).map((e) => e.path), ['/body/Name']);
});

test('port out of range or of the wrong type is refused', () => {
  assert.deepEqual(errorsOf({ Name: 'a', Port: 70000 }).map((e) => e.path), ['/body/Port']);
  assert.deepEqual(errorsOf({ Name: 'a', Port: '80' }).map((e) => e.path), ['/body/Port']);
  assert.deepEqual(errorsOf({ Name: 'a', Port: 1.5 }).map((e) => e.path), ['/body/Port']);
});

test('a bad Interval such as "10x" is refused with its path', () => {
  const errs = errorsOf({ Name: 'a', Check: { HTTP: 'http://x/h', Interval: '10x' } });
  assert.equal(errs[0]!.path, '/body/Check/Interval');
  assert.match(errs[0]!.message, /not a duration/);
});

test('wrong JSON types are refused field by field', () => {
  const errs = errorsOf({ Name: 5, Tags: 'v1', Meta: { a: 1 }, Check: 'x' });
  assert.deepEqual(errs.map((e) => e.path).sort(), ['/body/Check', '/body/Meta/a', '/body/Name', '/body/Tags']);
});

test('a check with neither HTTP+Interval nor TTL is refused', () => {
  assert.equal(errorsOf({ Name: 'a', Check: { Interval: '1s' } })[0]!.path, '/body/Check');
  assert.equal(errorsOf({ Name: 'a', Check: { HTTP: 'http://x/h' } })[0]!.path, '/body/Check/Interval');
  assert.equal(errorsOf({ Name: 'a', Check: { HTTP: 'not a url', Interval: '1s' } })[0]!.path, '/body/Check/HTTP');
});

test('unknown and unsupported fields are refused, not silently dropped', () => {
  assert.deepEqual(errorsOf({ Name: 'a', Colour: 'red' }).map((e) => e.path), ['/body/Colour']);
  assert.match(errorsOf({ Name: 'a', Connect: {} })[0]!.message, /not supported/);
});

test('a body that is not an object is refused', () => {
  for (const b of [null, [], 'x', 3]) assert.equal(errorsOf(b)[0]!.path, '/body');
});
