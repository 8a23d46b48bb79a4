/**
 * A log-linear latency histogram (HDR-style): values (e.g. microseconds) below 128 are exact;
 * above, each power of two is split into 128 equal buckets (≤ 0.8 % relative error). Fixed
 * memory whatever the number of samples. Pure; mergeable.
 */
const SUB = 128;
const SUB_BITS = 7;
const MAX_EXP = 47; // values up to 2^48 (≈ 8.9 years in µs)
const SIZE = SUB + (MAX_EXP - SUB_BITS + 1) * SUB;

function indexOf(v: number): number {
  if (v < SUB) return Math.floor(v);
  const e = Math.min(Math.floor(Math.log2(v)), MAX_EXP);
  const width = 2 ** (e - SUB_BITS);
  const sub = Math.min(SUB - 1, Math.floor((v - 2 ** e) / width));
  return SUB + (e - SUB_BITS) * SUB + sub;
}

/** The upper edge of a bucket: a quantile never understates latency. */
function upperEdge(i: number): number {
  if (i < SUB) return i;
  const e = Math.floor((i - SUB) / SUB) + SUB_BITS;
  const sub = (i - SUB) % SUB;
  return 2 ** e + (sub + 1) * 2 ** (e - SUB_BITS);
}

export class Histogram {
  readonly counts = new Float64Array(SIZE);
  count = 0;
  sum = 0;
  min = Number.POSITIVE_INFINITY;
  max = 0;

  record(value: number, times = 1): void {
    if (!(value >= 0) || !Number.isFinite(value)) return;
    this.counts[indexOf(value)]! += times;
    this.count += times;
    this.sum += value * times;
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
  }

  /** The value at quantile q (0..1), at most one bucket width above the true one. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const target = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < SIZE; i++) {
      seen += this.counts[i]!;
      if (seen >= target) return Math.min(upperEdge(i), this.max);
    }
    return this.max;
  }

  mean(): number {
    return this.count === 0 ? 0 : this.sum / this.count;
  }

  merge(other: Histogram): void {
    for (let i = 0; i < SIZE; i++) this.counts[i]! += other.counts[i]!;
    this.count += other.count;
    this.sum += other.sum;
    this.min = Math.min(this.min, other.min);
    this.max = Math.max(this.max, other.max);
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.sum = 0;
    this.min = Number.POSITIVE_INFINITY;
    this.max = 0;
  }
}
