/**
 * Protocol Buffers wire format, the subset OTLP uses: varints, fixed32/fixed64, doubles and
 * length-delimited fields (strings, bytes, nested messages). Pure: a growable Buffer to write
 * into and a cursor over a Buffer to read from. 64-bit integers travel as two 32-bit halves
 * (`lo`, `hi`): span times in nanoseconds since the epoch (~1.8e18) do not fit a double exactly.
 */
import { invariant } from './assert.js';

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LEN = 2;
export const WIRE_FIXED32 = 5;

const TWO_32 = 4_294_967_296;
/**
 * Bytes kept for a nested message's length when it begins: one, which holds lengths below 128,
 * what most messages here are (key-values, values, statuses). A longer one shifts its body.
 */
const LEN_RESERVED_BYTES = 1;
/** Bodies up to this many bytes are shifted by a loop here; longer ones by copyWithin (a call into C++). */
const SHIFT_BY_HAND_BYTES = 512;
/** The value of each ASCII hex digit, 255 for every other character. */
const HEX_VALUE = new Uint8Array(128).fill(255);
for (let i = 0; i < 10; i++) HEX_VALUE[48 + i] = i;
for (let i = 0; i < 6; i++) HEX_VALUE[65 + i] = HEX_VALUE[97 + i] = 10 + i;

export function varintSize(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** A fixed64 given as halves, as an exact decimal string. */
export function fixed64ToDecimal(lo: number, hi: number): string {
  if (hi < 2_097_152) return String(hi * TWO_32 + lo); // below 2⁵³: a double holds it exactly
  return ((BigInt(hi) << 32n) | BigInt(lo)).toString();
}

export class ProtoWriter {
  buf: Buffer;
  pos = 0;

  constructor(initialBytes = 16_384) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** The bytes written so far (a view: valid until the next write). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  /** An unsigned integer below 2⁵³. */
  varint(v: number): void {
    this.ensure(8);
    const buf = this.buf;
    let p = this.pos;
    while (v >= 128) {
      buf[p++] = (v % 128) | 128;
      v = Math.floor(v / 128);
    }
    buf[p++] = v;
    this.pos = p;
  }

  tag(field: number, wireType: number): void {
    this.varint(field * 8 + wireType);
  }

  /** A signed 64-bit integer as protobuf's int64 (negative numbers take ten bytes). */
  int64(field: number, v: number): void {
    this.tag(field, WIRE_VARINT);
    if (v >= 0 && v <= Number.MAX_SAFE_INTEGER) {
      this.varint(v);
      return;
    }
    let u = BigInt.asUintN(64, BigInt(Math.trunc(v)));
    this.ensure(10);
    while (u >= 128n) {
      this.buf[this.pos++] = Number(u & 127n) | 128;
      u >>= 7n;
    }
    this.buf[this.pos++] = Number(u);
  }

  uint(field: number, v: number): void {
    this.tag(field, WIRE_VARINT);
    this.varint(v);
  }

  bool(field: number, v: boolean): void {
    this.tag(field, WIRE_VARINT);
    this.varint(v ? 1 : 0);
  }

  fixed32(field: number, v: number): void {
    this.tag(field, WIRE_FIXED32);
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
  }

  fixed64(field: number, lo: number, hi: number): void {
    this.tag(field, WIRE_FIXED64);
    this.ensure(8);
    this.buf.writeUInt32LE(lo, this.pos);
    this.buf.writeUInt32LE(hi, this.pos + 4);
    this.pos += 8;
  }

  /** A time as fixed64 nanoseconds since the epoch, from [seconds, nanoseconds], exactly. */
  fixed64Time(field: number, seconds: number, nanos: number): void {
    // seconds·10⁹ + nanos can pass 2⁵³: split seconds in 16-bit halves so every product is exact.
    const a = Math.floor(seconds / 65_536);
    const b = seconds - a * 65_536;
    const y = a * 1e9; // the high part, still to be multiplied by 2¹⁶
    const x = b * 1e9 + nanos;
    const t = (y % 65_536) * 65_536 + (x % TWO_32);
    this.fixed64(field, t % TWO_32, Math.floor(y / 65_536) + Math.floor(x / TWO_32) + Math.floor(t / TWO_32));
  }

  double(field: number, v: number): void {
    this.tag(field, WIRE_FIXED64);
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  string(field: number, s: string): void {
    this.tag(field, WIRE_LEN);
    const len = s.length;
    // Most strings here are short ASCII (names, keys, ids): copied by hand, their length in one
    // byte. Buffer#write is a call into C++ that cost more than the copy (~1.5 µs per span of a
    // dozen strings, measured); the first non-ASCII character falls back to it.
    if (len < 128) {
      this.ensure(1 + len);
      const buf = this.buf;
      const at = this.pos + 1;
      let i = 0;
      while (i < len) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[at + i] = c;
        i++;
      }
      if (i === len) {
        buf[this.pos] = len;
        this.pos = at + len;
        return;
      }
    }
    const n = Buffer.byteLength(s, 'utf8');
    this.varint(n);
    this.ensure(n);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }

  /** Bytes given as lower- or upper-case hex (ids), converted by hand (see `string`). */
  hex(field: number, hex: string): void {
    const n = hex.length >>> 1;
    invariant(n * 2 === hex.length, 'an id is an even number of hex digits');
    this.tag(field, WIRE_LEN);
    this.varint(n);
    this.ensure(n);
    const buf = this.buf;
    const at = this.pos;
    let seen = 0;
    for (let i = 0; i < n; i++) {
      const a = hex.charCodeAt(2 * i);
      const b = hex.charCodeAt(2 * i + 1);
      const hi = a < 128 ? (HEX_VALUE[a] as number) : 255;
      const lo = b < 128 ? (HEX_VALUE[b] as number) : 255;
      seen |= hi | lo;
      buf[at + i] = (hi << 4) | lo;
    }
    invariant(seen < 16, 'an id is hex digits');
    this.pos = at + n;
  }

  raw(field: number, bytes: Uint8Array): void {
    this.tag(field, WIRE_LEN);
    this.varint(bytes.length);
    this.append(bytes);
  }

  /** Bytes already encoded (fields of a message written elsewhere), as they are. */
  append(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** Starts a nested message in `field`; give the result to `end` once its fields are written. */
  begin(field: number): number {
    this.tag(field, WIRE_LEN);
    this.ensure(LEN_RESERVED_BYTES);
    const at = this.pos;
    this.pos += LEN_RESERVED_BYTES;
    return at;
  }

  /**
   * Starts a nested message expected to be 128 bytes to 16 KiB long (a span): two bytes are kept
   * for its length, so `endLarge` writes it in place instead of shifting the body by a byte.
   */
  beginLarge(field: number): number {
    this.tag(field, WIRE_LEN);
    this.ensure(2);
    const at = this.pos;
    this.pos += 2;
    return at;
  }

  /** Ends a message begun by `beginLarge`; its length is encoded as small as it fits, as always. */
  endLarge(at: number): void {
    const len = this.pos - at - 2;
    const buf = this.buf;
    if (len >= 128 && len < 16_384) {
      buf[at] = (len & 127) | 128;
      buf[at + 1] = len >>> 7;
      return;
    }
    // Shorter or longer than expected: as if begun with one byte kept, which `end` then handles.
    buf.copyWithin(at + 1, at + 2, this.pos);
    this.pos--;
    this.end(at);
  }

  /** Ends the nested message begun at `at`: writes its length and closes the gap left for it. */
  end(at: number): void {
    const bodyStart = at + LEN_RESERVED_BYTES;
    const len = this.pos - bodyStart;
    if (len < 128) {
      this.buf[at] = len;
      return;
    }
    const shift = varintSize(len) - LEN_RESERVED_BYTES;
    this.ensure(shift);
    const buf = this.buf;
    if (len <= SHIFT_BY_HAND_BYTES) {
      for (let i = this.pos - 1; i >= bodyStart; i--) buf[i + shift] = buf[i] as number;
    } else {
      buf.copyWithin(bodyStart + shift, bodyStart, this.pos);
    }
    this.pos += shift;
    let v = len;
    let p = at;
    while (v >= 128) {
      buf[p++] = (v % 128) | 128;
      v = Math.floor(v / 128);
    }
    buf[p] = v;
  }
}

export class ProtoError extends Error {}

/** A cursor over protobuf bytes: `end` bounds the message being read. */
export class ProtoReader {
  constructor(
    readonly buf: Buffer,
    public pos: number,
    readonly end: number,
  ) {
    if (end > buf.length || pos > end) throw new ProtoError('a length runs past the end of the body');
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtoError('a varint runs past the end of its message');
      const b = this.buf[this.pos++] as number;
      // Past 2⁵³ the value is not exact; OTLP's varints here (tags, lengths, enums, counts) are small.
      result += (b & 127) * scale;
      if (b < 128) return result;
      scale *= 128;
    }
    throw new ProtoError('a varint is longer than ten bytes');
  }

  /** A signed int64 varint as a number (exact within ±2⁵³). */
  int64(): number {
    const start = this.pos;
    const v = this.varint();
    if (this.pos - start < 10) return v;
    // Ten bytes: a negative number in two's complement.
    let u = 0n;
    for (let i = this.pos - 1; i >= start; i--) u = (u << 7n) | BigInt((this.buf[i] as number) & 127);
    return Number(BigInt.asIntN(64, u));
  }

  /** Moves the cursor past `n` fixed-size bytes of a `what`; returns where they start. */
  private take(n: number, what: string): number {
    const at = this.pos;
    if (at + n > this.end) throw new ProtoError(`a ${what} runs past the end of its message`);
    this.pos = at + n;
    return at;
  }

  fixed32(): number {
    return this.buf.readUInt32LE(this.take(4, 'fixed32'));
  }

  /** A fixed64 as halves. */
  fixed64(): { lo: number; hi: number } {
    const at = this.take(8, 'fixed64');
    return { lo: this.buf.readUInt32LE(at), hi: this.buf.readUInt32LE(at + 4) };
  }

  double(): number {
    return this.buf.readDoubleLE(this.take(8, 'double'));
  }

  /** Where the last field read by `lenStart` ends. */
  fieldEnd = 0;

  /**
   * A length-delimited field without allocating: returns where its bytes start, leaves where
   * they end in `fieldEnd`, and moves the cursor past them (for loops over many fields).
   */
  lenStart(): number {
    const n = this.varint();
    const start = this.pos;
    const end = start + n;
    if (end > this.end) throw new ProtoError('a length-delimited field runs past the end of its message');
    this.pos = end;
    this.fieldEnd = end;
    return start;
  }

  /** A fixed64 as a double (exact below 2⁵³; nanosecond times come within 256 ns), without allocating. */
  fixed64Approx(): number {
    const at = this.take(8, 'fixed64');
    return this.buf.readUInt32LE(at) + this.buf.readUInt32LE(at + 4) * TWO_32;
  }

  /** A length-delimited field: the bounds of its bytes; the cursor moves past them. */
  len(): { start: number; end: number } {
    const start = this.lenStart();
    return { start, end: this.fieldEnd };
  }

  string(): string {
    const { start, end } = this.len();
    return this.buf.toString('utf8', start, end);
  }

  hex(): string {
    const { start, end } = this.len();
    return this.buf.toString('hex', start, end);
  }

  /** Skips a field of `wireType` (unknown fields are allowed and ignored). */
  skip(wireType: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_FIXED64:
        this.take(8, 'fixed64');
        return;
      case WIRE_LEN:
        this.len();
        return;
      case WIRE_FIXED32:
        this.take(4, 'fixed32');
        return;
      default:
        throw new ProtoError(`wire type ${wireType} is not one protobuf uses (groups are not supported)`);
    }
  }
}
