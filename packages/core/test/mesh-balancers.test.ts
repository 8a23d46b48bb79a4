import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  balancerKind,
  createBalancer,
  hash32,
  hashKeyOf,
  leastRequestBalancer,
  randomBalancer,
  ringHashBalancer,
  roundRobinBalancer,
} from '../src/mesh/balancers.js';
import { assertShare, mulberry32, sequence } from './mesh-helpers.js';

const eps = (...ids: string[]) => ids.map((id) => ({ id }));

test('the configured policy picks the algorithm; Istio default (none, UNSPECIFIED) is LEAST_REQUEST', () => {
  assert.equal(balancerKind(undefined), 'LEAST_REQUEST');
  assert.equal(balancerKind({ simple: 'UNSPECIFIED' }), 'LEAST_REQUEST');
  assert.equal(balancerKind({ simple: 'LEAST_CONN' }), 'LEAST_REQUEST');
  assert.equal(balancerKind({ simple: 'ROUND_ROBIN' }), 'ROUND_ROBIN');
  assert.equal(balancerKind({ simple: 'PASSTHROUGH' }), 'ROUND_ROBIN');
  assert.equal(balancerKind({ simple: 'RANDOM' }), 'RANDOM');
  assert.equal(balancerKind({ consistentHash: { httpHeaderName: 'x-user' } }), 'RING_HASH');
  assert.equal(createBalancer({ consistentHash: { useSourceIp: true } }, Math.random).kind, 'RING_HASH');
  for (const kind of ['ROUND_ROBIN', 'RANDOM', 'LEAST_REQUEST'] as const) {
    assert.equal(createBalancer({ simple: kind }, mulberry32(1)).pick([]), undefined, `${kind} with no endpoints`);
  }
  assert.equal(ringHashBalancer(mulberry32(1)).pick([], { hashKey: 'k' }), undefined);
});

test('round robin cycles; exclude skips tried endpoints; all excluded falls back to all', () => {
  const rr = roundRobinBalancer();
  const list = eps('a', 'b', 'c');
  assert.deepEqual(
    [1, 2, 3, 4].map(() => rr.pick(list)?.id),
    ['a', 'b', 'c', 'a'],
  );
  const tried = new Set(['a', 'b']);
  assert.equal(rr.pick(list, { exclude: tried })?.id, 'c');
  const any = rr.pick(list, { exclude: new Set(['a', 'b', 'c']) });
  assert.ok(any && list.includes(any));
});

test('random is uniform over the candidates and honours exclude', () => {
  const r = randomBalancer(mulberry32(11));
  const list = eps('a', 'b', 'c');
  const counts: Record<string, number> = { a: 0, b: 0, c: 0 };
  for (let i = 0; i < 6000; i++) counts[r.pick(list)!.id]!++;
  for (const id of ['a', 'b', 'c']) assertShare(counts[id]!, 6000, 100 / 3, 3, id);
  for (let i = 0; i < 100; i++) assert.notEqual(r.pick(list, { exclude: new Set(['b']) })?.id, 'b');
  assert.ok(['a', 'b'].includes(randomBalancer(() => 1).pick(eps('a', 'b'))!.id), 'a source returning 1 stays in range');
});

test('LEAST_REQUEST (power of two choices) prefers less loaded endpoints', () => {
  const lb = leastRequestBalancer(mulberry32(5));
  const list = eps('e0', 'e1', 'e2', 'e3', 'e4', 'e5', 'e6', 'e7', 'e8', 'e9');
  const load = (id: string) => Number(id.slice(1)); // e0 idle … e9 busiest
  const counts = new Array(10).fill(0) as number[];
  for (let i = 0; i < 20000; i++) counts[load(lb.pick(list, { load })!.id)]!++;
  assert.equal(counts[9], 0, 'the busiest endpoint never wins a pair');
  for (let i = 0; i < 8; i++) assert.ok(counts[i]! > counts[i + 1]!, `load ${i} should win more than load ${i + 1}: ${counts.join(',')}`);
  // P(least loaded of n sampled in a distinct pair) = 2/n.
  assertShare(counts[0]!, 20000, 20, 2, 'the idle endpoint');
  // With two endpoints the less loaded always wins.
  for (let i = 0; i < 50; i++) assert.equal(lb.pick(eps('busy', 'idle'), { load: (id) => (id === 'busy' ? 5 : 1) })?.id, 'idle');
});

test('LEAST_REQUEST: ties go to the first drawn, without load it is random, exclude is honoured', () => {
  // Draw index 1 first (0.5 of 2), then the only other one.
  assert.equal(leastRequestBalancer(sequence(0.5, 0)).pick(eps('a', 'b'), { load: () => 3 })?.id, 'b');
  assert.equal(leastRequestBalancer(sequence(0, 0)).pick(eps('a', 'b'), { load: () => 3 })?.id, 'a');
  const lb = leastRequestBalancer(mulberry32(2));
  const counts: Record<string, number> = { a: 0, b: 0, c: 0, d: 0 };
  for (let i = 0; i < 8000; i++) counts[lb.pick(eps('a', 'b', 'c', 'd'))!.id]!++;
  for (const id of ['a', 'b', 'c', 'd']) assertShare(counts[id]!, 8000, 25, 3, id);
  for (let i = 0; i < 100; i++) assert.equal(lb.pick(eps('a', 'b', 'c'), { exclude: new Set(['a', 'b']), load: () => 0 })?.id, 'c');
  assert.equal(lb.pick(eps('solo'), { load: () => 100 })?.id, 'solo');
});

function keys(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `user-${i}`);
}

test('ring hash: a key always maps to the same endpoint, whatever the endpoint order', () => {
  const a = ringHashBalancer(mulberry32(1));
  const b = ringHashBalancer(mulberry32(2));
  const list = eps('r1', 'r2', 'r3', 'r4');
  const reversed = [...list].reverse();
  for (const k of keys(500)) {
    const first = a.pick(list, { hashKey: k })?.id;
    assert.equal(a.pick(list, { hashKey: k })?.id, first);
    assert.equal(b.pick(reversed, { hashKey: k })?.id, first);
  }
});

test('ring hash spreads keys evenly enough with the default ring of 1024', () => {
  const lb = ringHashBalancer(mulberry32(1));
  const list = eps(...Array.from({ length: 10 }, (_, i) => `10.0.0.${i}:8080`));
  const counts = new Map<string, number>();
  for (const k of keys(20000)) {
    const id = lb.pick(list, { hashKey: k })!.id;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  assert.equal(counts.size, 10);
  for (const [id, n] of counts) assert.ok(n > 2000 * 0.6 && n < 2000 * 1.4, `${id} got ${n} of 20000`);
});

test('ring hash is stable: adding or removing one of n endpoints moves only ~1/n of the keys', () => {
  const lb = ringHashBalancer(mulberry32(1));
  const ten = eps(...Array.from({ length: 10 }, (_, i) => `ep-${i}`));
  const eleven = [...ten, { id: 'ep-new' }];
  const nine = ten.filter((e) => e.id !== 'ep-3');
  const all = keys(20000);
  const before = all.map((k) => lb.pick(ten, { hashKey: k })!.id);
  const added = all.map((k) => lb.pick(eleven, { hashKey: k })!.id);
  const removed = all.map((k) => lb.pick(nine, { hashKey: k })!.id);
  let movedOnAdd = 0;
  let movedOnRemove = 0;
  for (let i = 0; i < all.length; i++) {
    if (added[i] !== before[i]) {
      movedOnAdd++;
      assert.equal(added[i], 'ep-new', 'a key only ever moves to the new endpoint');
    }
    if (removed[i] !== before[i]) {
      movedOnRemove++;
      assert.equal(before[i], 'ep-3', 'only the removed endpoint’s keys move');
    }
  }
  assertShare(movedOnAdd, all.length, 100 / 11, 4, 'keys moved when adding the 11th endpoint');
  assertShare(movedOnRemove, all.length, 10, 4, 'keys moved when removing one of 10');
});

test('ring hash: a retry walks clockwise to another endpoint; no key → a random point; tiny rings work', () => {
  const lb = ringHashBalancer(mulberry32(3), 16);
  const list = eps('a', 'b', 'c');
  for (const k of keys(200)) {
    const first = lb.pick(list, { hashKey: k })!.id;
    const second = lb.pick(list, { hashKey: k, exclude: new Set([first]) })!.id;
    assert.notEqual(second, first);
    assert.equal(lb.pick(list, { hashKey: k, exclude: new Set([first]) })!.id, second, 'the retry target is stable too');
    const third = lb.pick(list, { hashKey: k, exclude: new Set([first, second]) })!.id;
    assert.ok(third !== first && third !== second);
    assert.equal(lb.pick(list, { hashKey: k, exclude: new Set(['a', 'b', 'c']) })!.id, first, 'all excluded: the key’s own endpoint');
  }
  const seen = new Set<string>();
  for (let i = 0; i < 300; i++) seen.add(lb.pick(list, { hashKey: null })!.id);
  assert.equal(seen.size, 3, 'requests without a key spread over all endpoints');
  const one = ringHashBalancer(mulberry32(3), 1);
  assert.ok(['a', 'b', 'c'].includes(one.pick(list, { hashKey: 'k' })!.id));
  assert.ok(['a', 'b'].includes(ringHashBalancer(mulberry32(3), Number.NaN).pick(eps('a', 'b'), { hashKey: 'k' })!.id));
});

test('hash keys: header, query parameter or source; null when absent or not configured', () => {
  const req = { path: '/cart?session=s1&x=2', headers: { 'x-user': 'jason', cookie: 'a=1' } };
  assert.equal(hashKeyOf({ consistentHash: { httpHeaderName: 'X-User' } }, req), 'jason');
  assert.equal(hashKeyOf({ consistentHash: { httpHeaderName: 'x-missing' } }, req), null);
  assert.equal(hashKeyOf({ consistentHash: { httpQueryParameterName: 'session' } }, req), 's1');
  assert.equal(hashKeyOf({ consistentHash: { httpQueryParameterName: 'nope' } }, req), null);
  assert.equal(hashKeyOf({ consistentHash: { useSourceIp: true } }, req, '127.0.0.1'), '127.0.0.1');
  assert.equal(hashKeyOf({ consistentHash: { useSourceIp: true } }, req), null);
  assert.equal(hashKeyOf({ simple: 'RANDOM' }, req), null);
  assert.equal(hashKeyOf(undefined, req), null);
});

test('hash32 is a deterministic unsigned 32-bit hash with avalanche', () => {
  assert.equal(hash32('abc'), hash32('abc'));
  assert.ok(hash32('abc') >= 0 && hash32('abc') < 2 ** 32);
  assert.notEqual(hash32('user-1'), hash32('user-2'));
  // Flipping one input character changes about half of the output bits.
  let bits = 0;
  for (let i = 0; i < 1000; i++) {
    let x = (hash32(`k${i}`) ^ hash32(`k${i}x`)) >>> 0;
    while (x) {
      bits += x & 1;
      x >>>= 1;
    }
  }
  assert.ok(bits / 1000 > 12 && bits / 1000 < 20, `mean flipped bits ${bits / 1000}`);
});
