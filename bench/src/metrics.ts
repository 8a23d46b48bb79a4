/**
 * `npm run bench:metrics`: what counting one request costs, in istio_requests_total and
 * istio_request_duration_milliseconds under Istio's 13 labels: Concord's RequestMetrics against
 * prom-client's Counter and Histogram (the baseline), in the same process, rounds alternating
 * which goes first. Label sets are what a loaded order process sees (a few callers and status
 * codes); each request builds its labels object afresh, as the server's hook does.
 */
import { RequestMetrics } from '@concord/platform/telemetry/request-metrics';
import { ISTIO_DURATION_BUCKETS_MS, REQUEST_LABELS, type RequestLabels } from '@concord/platform';
import { Counter, Histogram, Registry } from 'prom-client';
import { median } from './system.js';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 300_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);
const SOURCES = ['gateway', 'order', 'unknown'];
const CODES = ['200', '201', '409', '503'];

function labels(i: number): RequestLabels {
  const source = SOURCES[i % SOURCES.length] as string;
  return {
    reporter: i % 2 ? 'source' : 'destination',
    source_workload: source,
    source_version: 'unknown',
    source_principal: source === 'unknown' ? 'unknown' : `spiffe://cluster.local/ns/default/sa/${source}`,
    destination_workload: 'order',
    destination_service: 'order.default.svc.cluster.local',
    destination_service_name: 'order',
    destination_version: 'v1',
    destination_principal: 'unknown',
    request_protocol: 'http',
    response_code: CODES[i % CODES.length] as string,
    response_flags: '-',
    connection_security_policy: source === 'unknown' ? 'none' : 'mutual_tls',
  };
}

type Observe = (l: RequestLabels, ms: number) => void;

function promClient(): Observe {
  const r = [new Registry()];
  const counter = new Counter({ name: 'istio_requests_total', help: 'h', labelNames: REQUEST_LABELS, registers: r });
  const histogram = new Histogram({
    name: 'istio_request_duration_milliseconds',
    help: 'h',
    labelNames: REQUEST_LABELS,
    buckets: ISTIO_DURATION_BUCKETS_MS,
    registers: r,
  });
  return (l, ms) => {
    counter.inc(l);
    histogram.observe(l, ms);
  };
}

function concord(): Observe {
  const m = new RequestMetrics(
    new Registry(),
    { counter: 'istio_requests_total', counterHelp: 'h', histogram: 'istio_request_duration_milliseconds', histogramHelp: 'h' },
    REQUEST_LABELS,
    ISTIO_DURATION_BUCKETS_MS,
  );
  return (l, ms) => m.observe(l, ms);
}

/** CPU nanoseconds per request over REQUESTS requests. */
function time(observe: Observe): number {
  const start = process.cpuUsage();
  for (let i = 0; i < REQUESTS; i++) observe(labels(i), (i * 7) % 300);
  const used = process.cpuUsage(start);
  return ((used.user + used.system) * 1000) / REQUESTS;
}

const results = { promClient: [] as number[], concord: [] as number[] };
const subjects = { promClient: promClient(), concord: concord() };
// Warm both up first (the JIT), then alternate which goes first.
time(subjects.promClient);
time(subjects.concord);
for (let round = 1; round <= ROUNDS; round++) {
  const order = round % 2 ? (['promClient', 'concord'] as const) : (['concord', 'promClient'] as const);
  for (const name of order) results[name].push(time(subjects[name]));
  process.stderr.write(
    `[bench:metrics] round ${round}/${ROUNDS}: prom-client ${(results.promClient.at(-1) as number).toFixed(0)} ns, RequestMetrics ${(results.concord.at(-1) as number).toFixed(0)} ns per request\n`,
  );
}
const base = median(results.promClient);
const ours = median(results.concord);
process.stdout.write(`counting one request (${REQUESTS} per round, ${ROUNDS} rounds, medians of CPU time):\n`);
process.stdout.write(`  prom-client Counter + Histogram  ${base.toFixed(0)} ns\n`);
process.stdout.write(`  RequestMetrics                   ${ours.toFixed(0)} ns  (${(ours / base).toFixed(2)}× the baseline)\n`);
