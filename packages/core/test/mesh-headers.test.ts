import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyHeaderLayers, applyHeaderOperations, normalizeHeaders } from '../src/mesh/headers.js';

test('set replaces, add appends with ", ", remove deletes; names are case-insensitive', () => {
  const out = applyHeaderOperations(
    { 'X-Trace': 'a', Accept: 'text/html', 'x-remove-me': '1' },
    { set: { 'x-trace': 'b', 'X-New': 'n' }, add: { ACCEPT: 'application/json', 'x-fresh': 'f' }, remove: ['X-Remove-Me'] },
  );
  assert.deepEqual(out, { 'x-trace': 'b', accept: 'text/html, application/json', 'x-new': 'n', 'x-fresh': 'f' });
});

test('order inside one operation set: remove, then set, then add', () => {
  const out = applyHeaderOperations({ 'x-a': 'old' }, { remove: ['x-a'], set: { 'x-a': 'set' }, add: { 'x-a': 'added' } });
  assert.deepEqual(out, { 'x-a': 'set, added' });
});

test('set-cookie is never folded: add makes one more value', () => {
  const out = applyHeaderOperations({ 'Set-Cookie': ['a=1', 'b=2'] }, { add: { 'set-cookie': 'c=3' } });
  assert.deepEqual(out, { 'set-cookie': ['a=1', 'b=2', 'c=3'] });
  assert.deepEqual(applyHeaderOperations({}, { add: { 'set-cookie': 'c=3' } }), { 'set-cookie': 'c=3' });
});

test('input names differing in case are merged; the input is not mutated', () => {
  const input = { 'X-A': '1', 'x-a': '2', 'set-cookie': 'a=1', 'Set-Cookie': ['b=2'], skipped: undefined };
  assert.deepEqual(normalizeHeaders(input), { 'x-a': '1, 2', 'set-cookie': ['a=1', 'b=2'] });
  applyHeaderOperations(input, { set: { 'x-a': 'z' } });
  assert.equal(input['X-A'], '1');
});

test('host, pseudo-headers, bad names and CR/LF values are left alone (never throws)', () => {
  const out = applyHeaderOperations(
    { host: 'reviews:80' },
    { set: { host: 'evil', ':path': '/x', 'bad name': 'v', 'x-inject': 'a\r\nx-evil: 1', __proto__x: 'ok' }, add: { 'x-nul': 'a\0b' }, remove: ['host'] },
  );
  assert.deepEqual(out, { host: 'reviews:80', __proto__x: 'ok' });
  assert.deepEqual(applyHeaderOperations({}, undefined), {});
});

test('layers apply destination-level first, then route-level (Envoy order): the route-level set wins', () => {
  const out = applyHeaderLayers({ 'x-env': 'prod' }, [
    { set: { 'x-level': 'destination' }, add: { 'x-path': 'dest' } },
    { set: { 'x-level': 'route' }, add: { 'x-path': 'route' } },
  ]);
  assert.deepEqual(out, { 'x-env': 'prod', 'x-level': 'route', 'x-path': 'dest, route' });
});
