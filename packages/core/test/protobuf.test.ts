import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProtoError, ProtoReader, ProtoWriter, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT, fixed64ToDecimal, varintSize } from '../src/protobuf.js';

test('span times convert to fixed64 exactly, past 2^53 nanoseconds, and back to the same decimal', () => {
  const cases: Array<[number, number]> = [
    [0, 0],
    [0, 999_999_999],
    [1, 0],
    [1_795_717_814, 606_448_492],
    [4_294_967_295, 999_999_999],
    [65_535, 1],
    [65_536, 0],
  ];
  // Deterministic pseudo-random seconds and nanoseconds (xorshift), all over the 32-bit range.
  let x = 0x9e3779b9;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  for (let i = 0; i < 2000; i++) cases.push([next(), next() % 1_000_000_000]);
  for (const [s, ns] of cases) {
    const expected = BigInt(s) * 1_000_000_000n + BigInt(ns);
    const w = new ProtoWriter(16);
    w.fixed64Time(1, s, ns);
    const r = new ProtoReader(w.bytes(), 0, w.pos);
    assert.equal(r.varint(), (1 << 3) | WIRE_FIXED64);
    const { lo, hi } = r.fixed64();
    assert.equal((BigInt(hi) << 32n) | BigInt(lo), expected, `${s} s ${ns} ns`);
    assert.ok(lo >= 0 && lo < 2 ** 32 && hi >= 0 && hi < 2 ** 32);
    assert.equal(fixed64ToDecimal(lo, hi), expected.toString());
  }
});

test('every field kind reads back as written, unknown fields are skipped', () => {
  const w = new ProtoWriter(8); // small, so writing grows it several times
  w.uint(1, 0);
  w.uint(2, 127);
  w.uint(3, 128);
  w.uint(4, 2 ** 53 - 1);
  w.int64(5, -1);
  w.int64(6, -(2 ** 40));
  w.bool(7, true);
  w.fixed32(8, 0xdeadbeef);
  w.fixed64(9, 0xffffffff, 0x7fffffff);
  w.double(10, 0.1);
  w.string(11, 'héllo ✓');
  w.string(12, 'x'.repeat(300));
  w.hex(13, '0123456789abcdef');
  const r = new ProtoReader(w.bytes(), 0, w.pos);
  const got: unknown[] = [];
  while (!r.done) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field <= 4) got.push(r.varint());
    else if (field <= 6) got.push(r.int64());
    else if (field === 7) got.push(r.varint() === 1);
    else if (field === 8) got.push(r.fixed32());
    else if (field === 9) got.push(r.fixed64());
    else if (field === 10) got.push(r.double());
    else if (field <= 12) got.push(r.string());
    else if (field === 13) got.push(r.hex());
    else r.skip(wt);
  }
  assert.deepEqual(got, [0, 127, 128, 2 ** 53 - 1, -1, -(2 ** 40), true, 0xdeadbeef, { lo: 0xffffffff, hi: 0x7fffffff }, 0.1, 'héllo ✓', 'x'.repeat(300), '0123456789abcdef']);
});

test('a nested message gets its exact length whatever its size, begun with one length byte kept or two: one, two, three and four length bytes', () => {
  const lengthBytes = new Set<number>();
  // Blob sizes whose nested message (tag + length + blob) falls either side of 128, 16 384 and 2 097 152 bytes.
  // 300 and 600: two length bytes, the body shifted by hand (≤ 512 bytes) and by copyWithin.
  // beginLarge/endLarge (two bytes kept, for spans) must give the same bytes as begin/end at every size.
  for (const [size, large] of [0, 1, 125, 126, 300, 600, 16_380, 16_381, 2_097_144, 2_097_148, 3_000_000].flatMap((n) => [[n, false], [n, true]] as const)) {
    const w = new ProtoWriter(16);
    w.uint(1, 7);
    const at = large ? w.beginLarge(2) : w.begin(2);
    w.raw(1, Buffer.alloc(size, 0xab));
    if (large) w.endLarge(at);
    else w.end(at);
    w.uint(3, 9);
    const r = new ProtoReader(w.bytes(), 0, w.pos);
    assert.equal(r.varint(), (1 << 3) | WIRE_VARINT);
    assert.equal(r.varint(), 7);
    assert.equal(r.varint(), (2 << 3) | WIRE_LEN);
    const before = r.pos;
    const nested = r.len();
    lengthBytes.add(nested.start - before);
    assert.equal(nested.start - before, varintSize(nested.end - nested.start), 'the shortest length encoding');
    const inner = new ProtoReader(w.bytes(), nested.start, nested.end);
    assert.equal(inner.varint(), (1 << 3) | WIRE_LEN);
    const blob = inner.len();
    assert.equal(blob.end, nested.end, `size ${size}: the nested message ends where its length says`);
    assert.ok(w.bytes().subarray(blob.start, blob.end).every((b) => b === 0xab));
    assert.equal(r.varint(), (3 << 3) | WIRE_VARINT, `size ${size}: the field after it is intact`);
    assert.equal(r.varint(), 9);
    assert.ok(r.done);
  }
  assert.deepEqual([...lengthBytes].sort(), [1, 2, 3, 4]);
});

test('strings and ids written by hand read back: ASCII up to the one-byte length, non-ASCII anywhere, hex in either case', () => {
  const strings = ['', 'a', 'x'.repeat(127), 'x'.repeat(128), `${'x'.repeat(126)}é`, 'abc✓', '✓abc', 'nul\u0000byte', '😀'];
  const w = new ProtoWriter(4);
  for (const s of strings) w.string(1, s);
  w.hex(2, '0AF7651916CD43DD8448EB211C80319C');
  const r = new ProtoReader(w.bytes(), 0, w.pos);
  for (const s of strings) {
    assert.equal(r.varint(), (1 << 3) | WIRE_LEN);
    assert.equal(r.string(), s);
  }
  assert.equal(r.varint(), (2 << 3) | WIRE_LEN);
  assert.equal(r.hex(), '0af7651916cd43dd8448eb211c80319c');
  assert.ok(r.done);
  for (const bad of ['0af', 'zz', '0g', '✓✓']) assert.throws(() => new ProtoWriter().hex(1, bad), /hex digits/, bad);
});

test('truncated or malformed bytes throw ProtoError instead of reading past the message', () => {
  const w = new ProtoWriter();
  w.string(1, 'abcdef');
  w.fixed64(2, 1, 2);
  const whole = Buffer.from(w.bytes());
  const fieldBoundary = 8; // the string field alone is a whole message
  for (let cut = 1; cut < whole.length; cut++) {
    if (cut === fieldBoundary) continue;
    const r = new ProtoReader(whole, 0, cut);
    assert.throws(() => {
      while (!r.done) {
        const tag = r.varint();
        r.skip(tag & 7);
      }
    }, ProtoError, `cut at ${cut}`);
  }
  assert.throws(() => new ProtoReader(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), 0, 11).varint(), ProtoError, 'an eleven-byte varint');
  assert.throws(() => new ProtoReader(Buffer.from([0x0b]), 0, 1).skip(3), ProtoError, 'groups (wire type 3) are refused');
  assert.throws(() => new ProtoReader(Buffer.alloc(2), 0, 3), ProtoError, 'a bound past the buffer');
  assert.equal(WIRE_FIXED64, 1);
});
