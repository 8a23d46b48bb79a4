import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clientResponseHeaders, nextTraceparent, upstreamRequestHeaders } from '../src/headers.js';

const TRACE = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

test('upstream requests keep the allowed headers and drop hop-by-hop, internal and unknown ones', () => {
  const out = upstreamRequestHeaders(
    {
      authorization: 'Bearer t',
      'content-type': 'application/json',
      'idempotency-key': 'k',
      prefer: 'wait=1',
      connection: 'keep-alive',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      te: 'trailers',
      upgrade: 'h2c',
      host: 'evil.example',
      'content-length': '12',
      'proxy-authorization': 'Basic x',
      'x-concord-source': 'gateway@v1#spoofed',
      'x-served-by': 'spoofed',
      'x-request-id': 'client-chosen',
      cookie: 'session=1',
      'x-forwarded-for': '1.2.3.4',
    },
    'req-1',
    TRACE,
  );
  assert.deepEqual(out, {
    authorization: 'Bearer t',
    'content-type': 'application/json',
    'idempotency-key': 'k',
    prefer: 'wait=1',
    'x-request-id': 'req-1',
    traceparent: TRACE,
  });
});

test('a header the Connection header names is hop-by-hop and is dropped', () => {
  const out = upstreamRequestHeaders({ connection: 'close, Prefer', prefer: 'wait=3', accept: 'application/json' }, 'r', TRACE);
  assert.equal(out.prefer, undefined);
  assert.equal(out.accept, 'application/json');
  const back = clientResponseHeaders({ connection: 'etag', etag: '"1"', 'content-type': 'application/json' });
  assert.deepEqual(back, { 'content-type': 'application/json' });
});

test('repeated request headers (arrays) are ambiguous and dropped', () => {
  const out = upstreamRequestHeaders({ authorization: ['Bearer a', 'Bearer b'] as unknown as string }, 'r', TRACE);
  assert.equal(out.authorization, undefined);
});

test('responses keep x-served-by, traceparent, location, retry-after and drop the rest', () => {
  const out = clientResponseHeaders({
    'content-type': 'application/problem+json',
    'x-served-by': 'order@v1#order-1',
    traceparent: TRACE,
    location: '/api/orders/1',
    'retry-after': '1',
    'set-cookie': ['a=1'],
    'keep-alive': 'timeout=5',
    'transfer-encoding': 'chunked',
    'content-length': '10',
    'x-request-id': 'upstream-id',
    'x-powered-by': 'something',
    server: 'leaky/1.0',
  });
  assert.deepEqual(out, {
    'content-type': 'application/problem+json',
    'x-served-by': 'order@v1#order-1',
    traceparent: TRACE,
    location: '/api/orders/1',
    'retry-after': '1',
  });
});

test('a valid traceparent is continued: same trace id and flags, a new parent id', () => {
  const next = nextTraceparent(TRACE);
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(next);
  assert.ok(m, next);
  assert.equal(m[1], '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.notEqual(m[2], '00f067aa0ba902b7');
  assert.equal(m[3], '01');
  assert.equal(nextTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00').slice(-2), '00', 'an unsampled trace stays unsampled');
  // A future version is read by its first four fields.
  assert.match(nextTraceparent('cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds'), /^00-4bf92f3577b34da6a3ce929d0e0e4736-/);
});

test('a missing or invalid traceparent starts a new sampled trace', () => {
  for (const bad of [
    undefined,
    '',
    'garbage',
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
    'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra',
    ['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'x'],
  ]) {
    const next = nextTraceparent(bad);
    assert.match(next, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/, String(bad));
    assert.doesNotMatch(next, /4bf92f3577b34da6a3ce929d0e0e4736/, String(bad));
  }
  const ids = new Set(Array.from({ length: 2000 }, () => nextTraceparent(undefined)));
  assert.equal(ids.size, 2000, 'trace ids do not repeat');
});
