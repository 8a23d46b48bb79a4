import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkRegex, compileVirtualService, MAX_REGEX_CHARS, MAX_REGEX_INPUT_CHARS, mirrorDestination, pickDestination } from '../src/mesh/route.js';
import type { HttpRoute, VirtualService } from '../src/mesh/types.js';
import { assertShare, mulberry32 } from './mesh-helpers.js';

const req = (path: string, headers: Record<string, string | string[]> = {}, method = 'GET') => ({ method, path, headers });
const dest = (subset: string, weight = 0) => ({ destination: { host: 'reviews', subset }, weight });
const vs = (http: HttpRoute[]): VirtualService => ({ name: 'reviews', hosts: ['reviews'], http });

test('end-user: jason goes to v2, everyone else to v1 (the Bookinfo rule)', () => {
  const m = compileVirtualService(
    vs([
      { name: 'jason', match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [dest('v2', 100)] },
      { name: 'default', match: [], route: [dest('v1', 100)] },
    ]),
  );
  assert.deepEqual(m.errors, []);
  assert.equal(m.match(req('/reviews/1', { 'end-user': 'jason' }))?.name, 'jason');
  assert.equal(m.match(req('/reviews/1', { 'end-user': 'Jason' }))?.name, 'default', 'header values are case-sensitive');
  assert.equal(m.match(req('/reviews/1', { 'end-user': 'jasonx' }))?.name, 'default');
  assert.equal(m.match(req('/reviews/1'))?.name, 'default');
});

test('routes are tried in order and the first match wins; no match is null', () => {
  const m = compileVirtualService(
    vs([
      { name: 'broad', match: [{ uri: { prefix: '/api' } }], route: [dest('v1')] },
      { name: 'narrow', match: [{ uri: { exact: '/api/special' } }], route: [dest('v2')] },
    ]),
  );
  assert.equal(m.match(req('/api/special'))?.name, 'broad');
  assert.equal(m.match(req('/other')), null);
});

test('uri matches the path without the query string; exact, prefix, regex (whole string)', () => {
  const m = compileVirtualService(
    vs([
      { name: 'exact', match: [{ uri: { exact: '/a' } }], route: [dest('v1')] },
      { name: 'prefix', match: [{ uri: { prefix: '/b/' } }], route: [dest('v1')] },
      { name: 'regex', match: [{ uri: { regex: '/c/[0-9]+' } }], route: [dest('v1')] },
    ]),
  );
  assert.equal(m.match(req('/a?x=1'))?.name, 'exact');
  assert.equal(m.match(req('/a/'))?.name, undefined);
  assert.equal(m.match(req('/b/x?y'))?.name, 'prefix');
  assert.equal(m.match(req('/c/123?q=/c/x'))?.name, 'regex');
  assert.equal(m.match(req('/c/123x')), null, 'a regex must match the whole path');
  assert.equal(m.match(req('/x/c/123')), null, 'a regex is anchored at the start too');
});

test('ignoreUriCase applies to exact and prefix, not to regex', () => {
  const m = compileVirtualService(
    vs([
      { name: 'exact', match: [{ uri: { exact: '/Login' }, ignoreUriCase: true }], route: [dest('v1')] },
      { name: 'prefix', match: [{ uri: { prefix: '/API/' }, ignoreUriCase: true }], route: [dest('v1')] },
      { name: 'regex', match: [{ uri: { regex: '/rx/[a-z]+' }, ignoreUriCase: true }], route: [dest('v1')] },
    ]),
  );
  assert.equal(m.match(req('/LOGIN'))?.name, 'exact');
  assert.equal(m.match(req('/api/orders'))?.name, 'prefix');
  assert.equal(m.match(req('/rx/abc'))?.name, 'regex');
  assert.equal(m.match(req('/RX/ABC')), null);
});

test('fields inside one match block are ANDed, match blocks are ORed', () => {
  const m = compileVirtualService(
    vs([
      {
        name: 'r',
        match: [{ uri: { prefix: '/orders' }, method: { exact: 'POST' } }, { headers: { 'x-canary': { exact: '1' } } }],
        route: [dest('v2')],
      },
    ]),
  );
  assert.equal(m.match(req('/orders', {}, 'POST'))?.name, 'r');
  assert.equal(m.match(req('/orders', {}, 'GET')), null);
  assert.equal(m.match(req('/else', { 'x-canary': '1' }, 'GET'))?.name, 'r');
});

test('header matches: prefix, regex, presence ({}), repeated headers joined with ","; uri/method keys ignored', () => {
  const m = compileVirtualService(
    vs([
      { name: 'prefix', match: [{ headers: { 'user-agent': { prefix: 'curl/' } } }], route: [dest('v1')] },
      { name: 'regex', match: [{ headers: { cookie: { regex: '^(.*?;)?(user=jason)(;.*)?$' } } }], route: [dest('v1')] },
      { name: 'present', match: [{ headers: { 'x-debug': {} } }], route: [dest('v1')] },
      { name: 'multi', match: [{ headers: { 'x-list': { exact: 'a,b' } } }], route: [dest('v1')] },
      { name: 'ignored', match: [{ headers: { method: { exact: 'NEVER' } } }], route: [dest('v1')] },
    ]),
  );
  assert.equal(m.match(req('/', { 'user-agent': 'curl/8.0' }))?.name, 'prefix');
  assert.equal(m.match(req('/', { cookie: 'a=1;user=jason;b=2' }))?.name, 'regex');
  assert.equal(m.match(req('/', { 'x-debug': '' }))?.name, 'present');
  assert.equal(m.match(req('/', { 'x-list': ['a', 'b'] }))?.name, 'multi');
  assert.equal(m.match(req('/'))?.name, 'ignored', 'a headers key named "method" is ignored, so the block matches all');
});

test('queryParams: exact, regex, "?key" with exact "", first occurrence, percent-decoded', () => {
  const m = compileVirtualService(
    vs([
      { name: 'flag', match: [{ queryParams: { debug: { exact: '' } } }], route: [dest('v1')] },
      { name: 'exact', match: [{ queryParams: { user: { exact: 'j son' } } }], route: [dest('v1')] },
      { name: 'regex', match: [{ queryParams: { id: { regex: '\\d+' } } }], route: [dest('v1')] },
    ]),
  );
  assert.equal(m.match(req('/p?debug'))?.name, 'flag');
  assert.equal(m.match(req('/p?debug='))?.name, 'flag');
  assert.equal(m.match(req('/p?user=j%20son'))?.name, 'exact');
  assert.equal(m.match(req('/p?user=x&user=j%20son')), null, 'the first occurrence counts');
  assert.equal(m.match(req('/p?id=123'))?.name, 'regex');
  assert.equal(m.match(req('/p?id=a123')), null);
  assert.equal(m.match(req('/p?id=%E0%A4%A')), null, 'undecodable values are kept as sent and never throw');
});

test('regex guard: refuses patterns that could backtrack catastrophically or are not RE2', () => {
  assert.equal(checkRegex('/api/v[0-9]+/.*'), null);
  assert.equal(checkRegex('^(.*?;)?(user=jason)(;.*)?$'), null);
  assert.equal(checkRegex('(?i)/login'), null);
  assert.equal(checkRegex('/(?P<id>[0-9]+)'), null);
  assert.match(checkRegex('(a+)+$') ?? '', /nested unbounded/);
  assert.match(checkRegex('^(/[a-z0-9-]+)+$') ?? '', /nested unbounded/);
  assert.match(checkRegex('(x*y*)*') ?? '', /nested unbounded/);
  assert.match(checkRegex('(a|aa)*b') ?? '', /alternation/);
  assert.match(checkRegex('(a)\\1') ?? '', /back-reference/);
  assert.match(checkRegex('foo(?=bar)') ?? '', /look-around/);
  assert.match(checkRegex('(?<!x)y') ?? '', /look-around/);
  assert.match(checkRegex('a{1001}') ?? '', /repetition count/);
  assert.match(checkRegex('x'.repeat(MAX_REGEX_CHARS + 1)) ?? '', /longer than/);
  assert.match(checkRegex('(abc') ?? '', /unbalanced|invalid/);
  assert.match(checkRegex('[abc') ?? '', /unterminated|invalid/);
  assert.match(checkRegex('(?U)a*') ?? '', /flag U/);
});

test('a refused regex is reported and its block never matches; the rest of the config still works', () => {
  const m = compileVirtualService(
    vs([
      { name: 'bad', match: [{ uri: { regex: '(a+)+' } }], route: [dest('v2')] },
      { name: 'good', match: [], route: [dest('v1')] },
    ]),
  );
  assert.equal(m.errors.length, 1);
  assert.match(m.errors[0] ?? '', /reviews: http\[0\]\.match\[0\]\.uri: nested unbounded/);
  assert.equal(m.match(req('aaaa'))?.name, 'good');
});

test('a value longer than the regex input limit never matches a regex, and matching stays fast', () => {
  const m = compileVirtualService(vs([{ name: 'r', match: [{ headers: { 'x-a': { regex: 'a*b?' } } }], route: [dest('v1')] }]));
  assert.equal(m.match(req('/', { 'x-a': 'a'.repeat(MAX_REGEX_INPUT_CHARS) }))?.name, 'r');
  assert.equal(m.match(req('/', { 'x-a': 'a'.repeat(MAX_REGEX_INPUT_CHARS + 1) })), null);
  const t0 = performance.now();
  const hostile = compileVirtualService(vs([{ name: 'r', match: [{ uri: { regex: '/[a-z]*x[a-z]*y' } }], route: [dest('v1')] }]));
  assert.equal(hostile.match(req(`/${'a'.repeat(5000)}`)), null);
  assert.ok(performance.now() - t0 < 1000, 'polynomial patterns on capped input finish quickly');
});

test('VirtualService 90/10 over 2,000 picks lands within ±3 %', () => {
  const route: HttpRoute = { match: [], route: [dest('v1', 90), dest('v2', 10)] };
  for (const seed of [1, 2, 3, 42, 2024]) {
    const random = mulberry32(seed);
    let v2 = 0;
    for (let i = 0; i < 2000; i++) if (pickDestination(route, random)?.destination.subset === 'v2') v2++;
    assertShare(v2, 2000, 10, 3, `seed ${seed}: v2 share`);
  }
});

test('weights are relative; 0 means never; a lone destination always wins; all-zero splits evenly', () => {
  const random = mulberry32(7);
  const three: HttpRoute = { match: [], route: [dest('a', 1), dest('b', 0), dest('c', 3)] };
  const counts: Record<string, number> = { a: 0, b: 0, c: 0 };
  for (let i = 0; i < 4000; i++) counts[pickDestination(three, random)?.destination.subset as string]!++;
  assert.equal(counts.b, 0);
  assertShare(counts.a!, 4000, 25, 3, 'a (1 of 4)');
  assertShare(counts.c!, 4000, 75, 3, 'c (3 of 4)');

  assert.equal(pickDestination({ match: [], route: [dest('only', 0)] }, () => 0.99)?.destination.subset, 'only');
  assert.equal(pickDestination({ match: [], route: [] }, random), null);
  const zero: HttpRoute = { match: [], route: [dest('x', 0), dest('y', 0)] };
  assert.equal(pickDestination(zero, () => 0.1)?.destination.subset, 'x');
  assert.equal(pickDestination(zero, () => 0.9)?.destination.subset, 'y');
  // Boundaries of the injected source: 0 and values at or past 1 stay in range.
  const two: HttpRoute = { match: [], route: [dest('p', 50), dest('q', 50)] };
  assert.equal(pickDestination(two, () => 0)?.destination.subset, 'p');
  assert.equal(pickDestination(two, () => 1)?.destination.subset, 'q');
  assert.equal(pickDestination(two, () => Number.NaN)?.destination.subset, 'p');
});

test('picks are deterministic given the random source', () => {
  const route: HttpRoute = { match: [], route: [dest('v1', 50), dest('v2', 50)] };
  const run = (seed: number) => {
    const r = mulberry32(seed);
    return Array.from({ length: 50 }, () => pickDestination(route, r)?.destination.subset).join();
  };
  assert.equal(run(99), run(99));
  assert.notEqual(run(99), run(100));
});

test('mirroring: 100 % by default when a mirror is set, else mirrorPercentage', () => {
  const random = mulberry32(5);
  const mirror = { host: 'reviews', subset: 'shadow' };
  assert.deepEqual(mirrorDestination({ match: [], route: [], mirror }, random), mirror);
  assert.equal(mirrorDestination({ match: [], route: [] }, random), null);
  let n = 0;
  for (let i = 0; i < 2000; i++) if (mirrorDestination({ match: [], route: [], mirror, mirrorPercentage: 25 }, random)) n++;
  assertShare(n, 2000, 25, 3, 'mirrored share');
  assert.equal(mirrorDestination({ match: [], route: [], mirror, mirrorPercentage: 0 }, random), null);
});
