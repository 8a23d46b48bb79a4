/**
 * `istio_requests_total` and the histogram `istio_request_duration_milliseconds`, counted in one
 * map of series and exposed through a prom-client Registry in prom-client's own format.
 *
 * Why not prom-client's Counter and Histogram: every request is counted twice (by its caller and
 * by its server), under 13 labels, and each count there allocates, checks every label name
 * against the list and builds a ~300-character key: 3.2 µs per request for the pair (measured,
 * 500,000 in a loop), several times per order. Here one key (the values, length-prefixed) finds
 * the series, and both metrics are read from it at a scrape.
 */
import type { Registry } from 'prom-client';
import { invariant } from '@concord/core';

/** Label sets kept at most: an observation that would make one more is dropped and counted. */
export const MAX_REQUEST_SERIES = 10_000;
/** The count of observations dropped at that bound. */
export const DROPPED_METRIC = 'concord_request_series_dropped_total';

interface Series {
  labels: Record<string, string>;
  count: number;
  sum: number;
  /** Observations per bucket (not cumulative), one per upper bound. */
  perBucket: Float64Array;
}

/** A value as prom-client's registry formats it (see getMetricsAsString). */
interface ExportValue {
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  value: number;
  metricName?: string;
  exemplar?: null;
}

/**
 * A metric as prom-client's Registry reads one: `values(true)` for the text format (a series'
 * labels shared by its values, as prom-client's histogram gives them), `values(false)` for JSON.
 */
function registryMetric(name: string, help: string, type: 'counter' | 'histogram', values: (forText: boolean) => ExportValue[], reset: () => void) {
  const read = (forText: boolean) => async () => ({ name, help, type, aggregator: 'sum', values: values(forText) });
  return { name, help, type, aggregator: 'sum', get: read(false), getForPromString: read(true), reset };
}

export class RequestMetrics {
  private readonly series = new Map<string, Series>();
  /** Observations dropped because MAX_REQUEST_SERIES label sets were kept already. */
  dropped = 0;

  constructor(
    registry: Registry,
    private readonly names: { counter: string; histogram: string; counterHelp: string; histogramHelp: string },
    private readonly labelNames: readonly string[],
    private readonly upperBounds: readonly number[],
  ) {
    invariant(
      upperBounds.every((b, i) => i === 0 || b > (upperBounds[i - 1] as number)),
      'bucket bounds increase',
    );
    const clear = () => this.series.clear();
    const dropped = `Requests left out of ${names.counter} and ${names.histogram}: ${MAX_REQUEST_SERIES} label sets were kept already.`;
    for (const m of [
      registryMetric(names.counter, names.counterHelp, 'counter', () => this.counterValues(), clear),
      registryMetric(names.histogram, names.histogramHelp, 'histogram', (forText) => this.histogramValues(forText), clear),
      registryMetric(
        DROPPED_METRIC,
        dropped,
        'counter',
        () => [{ value: this.dropped, labels: {} }],
        () => {
          this.dropped = 0;
        },
      ),
    ]) {
      registry.registerMetric(m as unknown as Parameters<Registry['registerMetric']>[0]);
    }
  }

  /** Counts one request of `durationMs` under `labels` (a value for each label name). */
  observe(labels: Readonly<Record<string, string>>, durationMs: number): void {
    if (!Number.isFinite(durationMs)) throw new TypeError(`a request duration must be a finite number, got ${durationMs}`);
    // Length-prefixed values: no two label sets share a key, whatever characters they hold.
    let key = '';
    for (const name of this.labelNames) {
      const v = labels[name];
      // (The message is built only when the check fails: this runs for every request.)
      if (typeof v !== 'string') invariant(false, `request label ${name} is a string`);
      key += `${v.length}:${v}`;
    }
    let s = this.series.get(key);
    if (s === undefined) {
      if (this.series.size >= MAX_REQUEST_SERIES) {
        this.dropped++;
        return;
      }
      const kept: Record<string, string> = {};
      for (const name of this.labelNames) kept[name] = labels[name] as string;
      s = { labels: kept, count: 0, sum: 0, perBucket: new Float64Array(this.upperBounds.length) };
      this.series.set(key, s);
    }
    s.count++;
    s.sum += durationMs;
    const bounds = this.upperBounds;
    for (let i = 0; i < bounds.length; i++) {
      if (durationMs <= (bounds[i] as number)) {
        (s.perBucket[i] as number)++;
        break;
      }
    }
  }

  private counterValues(): ExportValue[] {
    const out: ExportValue[] = [];
    for (const s of this.series.values()) out.push({ value: s.count, labels: s.labels });
    return out;
  }

  /**
   * The histogram's values in prom-client's order: each series' cumulative buckets, then +Inf,
   * _sum and _count. `shared`: the series' labels ride along once per value (the text format);
   * else they are merged into each value's labels (getMetricsAsJSON).
   */
  private histogramValues(shared: boolean): ExportValue[] {
    const out: ExportValue[] = [];
    const bucket = `${this.names.histogram}_bucket`;
    // As prom-client's: a bucket has an exemplar (none here), _sum and _count have not.
    const value = (labels: Record<string, string | number>, v: number, metricName: string, s: Series, isBucket: boolean): ExportValue => {
      const out: ExportValue = shared ? { labels, sharedLabels: s.labels, value: v, metricName } : { labels: { ...labels, ...s.labels }, value: v, metricName };
      if (isBucket) out.exemplar = null;
      return out;
    };
    for (const s of this.series.values()) {
      let acc = 0;
      for (let i = 0; i < this.upperBounds.length; i++) {
        acc += s.perBucket[i] as number;
        out.push(value({ le: this.upperBounds[i] as number }, acc, bucket, s, true));
      }
      out.push(value({ le: '+Inf' }, s.count, bucket, s, true));
      out.push(value({}, s.sum, `${this.names.histogram}_sum`, s, false));
      out.push(value({}, s.count, `${this.names.histogram}_count`, s, false));
    }
    return out;
  }
}
