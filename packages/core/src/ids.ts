/**
 * Time-ordered identifiers: UUID version 7 (RFC 9562) — 48 bits of Unix milliseconds, then a
 * 12-bit counter for ids made within one millisecond, then 62 random bits. Their text sorts
 * by creation time, so a B-tree keyed by them (an order, its saga, the saga's log) takes new
 * rows on its rightmost pages: a group commit of many new orders then dirties a few pages
 * instead of one random page per row and index. Pure: the clock and the random source are
 * injected.
 */

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const MAX_COUNTER = 0xfff;

export interface Uuid7Source {
  /** Milliseconds since the Unix epoch. */
  nowMs(): number;
  /** Fills `bytes` with random bytes. */
  fill(bytes: Uint8Array): void;
}

/**
 * A generator of UUIDv7 strings, increasing for as long as one generator makes them (within a
 * millisecond by the counter; when the clock steps back, by staying on the last millisecond
 * used until the clock passes it).
 */
export function uuid7Generator(src: Uuid7Source): () => string {
  let lastMs = -1;
  let counter = 0;
  const rnd = new Uint8Array(8);
  return () => {
    let ms = Math.floor(src.nowMs());
    if (ms <= lastMs) {
      ms = lastMs;
      if (counter < MAX_COUNTER) counter++;
      else {
        // 4,096 ids in one millisecond: borrow the next one (the clock catches up soon).
        ms = lastMs + 1;
        counter = 0;
      }
    } else counter = 0;
    lastMs = ms;
    src.fill(rnd);
    const b = new Uint8Array(16);
    // 48-bit big-endian timestamp (2^48 ms lasts until the year 10889).
    let t = ms;
    for (let i = 5; i >= 0; i--) {
      b[i] = t % 256;
      t = Math.floor(t / 256);
    }
    b[6] = 0x70 | (counter >> 8);
    b[7] = counter & 0xff;
    b[8] = 0x80 | ((rnd[0] as number) & 0x3f);
    for (let i = 1; i < 8; i++) b[8 + i] = rnd[i] as number;
    let s = '';
    for (let i = 0; i < 16; i++) {
      s += HEX[b[i] as number];
      if (i === 3 || i === 5 || i === 7 || i === 9) s += '-';
    }
    return s;
  };
}

/** The millisecond a UUIDv7 was made in, or null when `id` is not one. */
export function uuid7TimeMs(id: string): number | null {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id)) return null;
  return Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}
