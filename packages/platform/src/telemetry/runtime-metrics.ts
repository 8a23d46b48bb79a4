/**
 * Node.js runtime metrics: prom-client's default metrics, with the same names, except that the
 * event-loop delay is sampled every `resolutionMs` and reported as the delay past that period.
 *
 * Why not collectDefaultMetrics as it is: its event-loop histogram samples every 10 ms, a timer
 * that wakes every process 100 times a second. An idle Node.js process spent 4.6 ms of CPU per
 * second on it alone, 0.56 at 100 ms (measured, a bare process, 20 s each); the whole idle
 * system used 120 ms/s of CPU with it, 81 with a 100 ms period. And Node's histogram records
 * the interval between samples, period included, so prom-client's
 * `nodejs_eventloop_lag_p50_seconds` of an idle process reads the period (0.010) rather than no
 * delay: here it reads what the loop was late.
 */
import { createRequire } from 'node:module';
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { Gauge, type Registry, collectDefaultMetrics } from 'prom-client';

const require = createRequire(import.meta.url);

/** prom-client's default metric that this module replaces. */
const REPLACED = 'eventLoopLag';

type DefaultMetric = (registry: Registry, config: object) => void;

/**
 * Registers prom-client's default metrics but the event-loop ones (each from its own module, as
 * collectDefaultMetrics does), then this module's event-loop metrics.
 */
export function collectRuntimeMetrics(registry: Registry, resolutionMs: number): void {
  for (const name of collectDefaultMetrics.metricsList) {
    if (name === REPLACED) continue;
    const add = require(`prom-client/lib/metrics/${name}.js`) as DefaultMetric;
    if (typeof add !== 'function') throw new Error(`prom-client's default metric ${name} is not where it was (prom-client/lib/metrics/${name}.js)`);
    add(registry, {});
  }
  eventLoopMetrics(registry, resolutionMs);
}

/** What each percentile gauge reads from the histogram (nanoseconds). */
const READINGS: Array<[string, string, (h: IntervalHistogram) => number]> = [
  ['min', 'The minimum recorded event loop delay.', (h) => h.min],
  ['max', 'The maximum recorded event loop delay.', (h) => h.max],
  ['mean', 'The mean of the recorded event loop delays.', (h) => h.mean],
  ['p50', 'The 50th percentile of the recorded event loop delays.', (h) => h.percentile(50)],
  ['p90', 'The 90th percentile of the recorded event loop delays.', (h) => h.percentile(90)],
  ['p99', 'The 99th percentile of the recorded event loop delays.', (h) => h.percentile(99)],
];

/**
 * `nodejs_eventloop_lag_seconds` (how long a setImmediate took, measured at a scrape and reported
 * at the next, as prom-client does) and the delay's min, max, mean, stddev and percentiles since
 * the last scrape, each the sample interval less `resolutionMs` (never below 0). A scrape with no
 * sample since the last one keeps the previous values.
 */
function eventLoopMetrics(registry: Registry, resolutionMs: number): void {
  // Node takes whole milliseconds, at least one (a duration such as "1.5ms" is rounded).
  const period = Math.max(1, Math.round(resolutionMs));
  const h = monitorEventLoopDelay({ resolution: period });
  h.enable();
  const periodNs = period * 1e6;
  // Registered first, as prom-client does: its collect sets the others before they are read.
  new Gauge({
    name: 'nodejs_eventloop_lag_seconds',
    help: 'Lag of event loop in seconds.',
    registers: [registry],
    collect() {
      const start = process.hrtime.bigint();
      setImmediate(() => this.set(Number(process.hrtime.bigint() - start) / 1e9));
      if (h.count === 0) return;
      for (const [g, read] of gauges) g.set(Math.max(0, read(h) - periodNs) / 1e9);
      stddev.set(h.stddev / 1e9);
      h.reset();
    },
  });
  const gauges = READINGS.map(([key, help, read]) => [new Gauge({ name: `nodejs_eventloop_lag_${key}_seconds`, help, registers: [registry] }), read] as const);
  const stddev = new Gauge({
    name: 'nodejs_eventloop_lag_stddev_seconds',
    help: 'The standard deviation of the recorded event loop delays.',
    registers: [registry],
  });
}
