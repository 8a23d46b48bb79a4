/** The bench report: a console table, a JSON file and a self-contained HTML page with plots. */
import type { CheckResult } from '../audit/checks.js';
import type { LoadResult, Tick } from './loadgen.js';

export interface BenchReport {
  kind: 'bench' | 'chaos';
  command: string;
  load: LoadResult;
  audit: { ok: boolean; results: CheckResult[] } | null;
  extra?: Record<string, unknown>;
  events?: Array<{ atMs: number; label: string }>;
  /**
   * CPU per acknowledged order over the measured phase, by service (summed over its instances),
   * when the bench knows the control plane; `generatorUs` is this process's own, not in the total.
   */
  cpu?: { orders: number; totalUs: number; byService: Array<{ service: string; us: number }>; generatorUs: number } | null;
}

const fmt = (n: number, d = 1) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

export function renderTable(r: BenchReport): string {
  const l = r.load;
  const s = l.durationMs / 1000;
  const rows: Array<[string, string]> = [
    ['duration', `${fmt(s)} s`],
    ['mode', l.ratePerS > 0 ? `open model, ${l.ratePerS}/s target` : `closed model, ${l.connections} connections`],
    ['orders sent', String(l.sent)],
    ['acknowledged (201/202)', `${l.acknowledged}  (${fmt(l.acknowledged / s)}/s)`],
    ['errors', `${l.errors}${l.dropped ? ` (of which ${l.dropped} dropped by the generator's own queue bound)` : ''}`],
    ['success ratio', `${fmt((100 * l.acknowledged) / Math.max(1, l.sent), 3)} %`],
    ['latency p50 / p90 / p99', `${fmt(l.latency.p50Ms)} / ${fmt(l.latency.p90Ms)} / ${fmt(l.latency.p99Ms)} ms`],
    ['latency p99.9 / max', `${fmt(l.latency.p999Ms)} / ${fmt(l.latency.maxMs)} ms`],
    ['HTTP statuses', Object.entries(l.statuses).map(([k, v]) => `${k}: ${v}`).join(', ')],
    ['order statuses', Object.entries(l.orderStatuses).map(([k, v]) => `${k}: ${v}`).join(', ')],
  ];
  if (r.cpu) {
    rows.push(['CPU per order', `${fmt(r.cpu.totalUs, 0)} µs in the system (load generator ${fmt(r.cpu.generatorUs, 0)} µs more)`]);
    rows.push(['  by service (µs)', r.cpu.byService.map((c) => `${c.service} ${fmt(c.us, 0)}`).join(', ')]);
  }
  const w = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`);
  if (l.errorSamples.length) lines.push('', '  first errors:', ...l.errorSamples.slice(0, 5).map((e) => `    ${e}`));
  return lines.join('\n');
}

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);
}

/** An SVG line chart, no library. */
function chart(title: string, unit: string, series: Array<{ name: string; color: string; points: Array<[number, number]> }>, events: Array<{ atS: number; label: string }>): string {
  const W = 860;
  const H = 260;
  const L = 60;
  const B = 30;
  const all = series.flatMap((s) => s.points);
  const maxX = Math.max(1, ...all.map((p) => p[0]));
  const maxY = Math.max(1, ...all.map((p) => p[1])) * 1.1;
  const x = (v: number) => L + ((W - L - 10) * v) / maxX;
  const y = (v: number) => H - B - ((H - B - 20) * v) / maxY;
  const grid = [0, 0.25, 0.5, 0.75, 1]
    .map((f) => `<line x1="${L}" x2="${W - 10}" y1="${y(maxY * f)}" y2="${y(maxY * f)}" stroke="#e5e7eb"/><text x="${L - 6}" y="${y(maxY * f) + 4}" font-size="11" text-anchor="end" fill="#6b7280">${fmt(maxY * f, maxY < 10 ? 1 : 0)}</text>`)
    .join('');
  const lines = series
    .map((s) => `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${s.points.map(([a, b]) => `${x(a).toFixed(1)},${y(b).toFixed(1)}`).join(' ')}"><title>${esc(s.name)}</title></polyline>`)
    .join('');
  const marks = events.map((e) => `<line x1="${x(e.atS)}" x2="${x(e.atS)}" y1="20" y2="${H - B}" stroke="#ef4444" stroke-dasharray="4 3"/><text x="${x(e.atS) + 3}" y="30" font-size="10" fill="#ef4444">${esc(e.label)}</text>`).join('');
  const legend = series.map((s, i) => `<rect x="${L + i * 150}" y="${H - 12}" width="12" height="3" fill="${s.color}"/><text x="${L + i * 150 + 16}" y="${H - 8}" font-size="12">${esc(s.name)}</text>`).join('');
  return `<figure><figcaption>${esc(title)} (${esc(unit)})</figcaption><svg class="plot" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">${grid}${marks}${lines}${legend}<text x="${W - 10}" y="${H - B + 16}" font-size="11" text-anchor="end" fill="#6b7280">seconds</text></svg></figure>`;
}

export function renderHtml(r: BenchReport): string {
  const t: Tick[] = r.load.ticks;
  const events = (r.events ?? []).map((e) => ({ atS: e.atMs / 1000, label: e.label }));
  const throughput = chart(
    'Throughput',
    'orders per second',
    [
      { name: 'acknowledged', color: '#2563eb', points: t.map((k) => [k.second, k.acknowledged]) },
      { name: 'errors', color: '#dc2626', points: t.map((k) => [k.second, k.errors]) },
    ],
    events,
  );
  const latency = chart(
    'Latency',
    'milliseconds',
    [
      { name: 'p50', color: '#059669', points: t.map((k) => [k.second, k.p50Ms]) },
      { name: 'p99', color: '#d97706', points: t.map((k) => [k.second, k.p99Ms]) },
    ],
    events,
  );
  const auditRows = (r.audit?.results ?? []).map((c) => `<tr><td class="${c.ok ? 'pass' : 'fail'}">${c.ok ? 'PASS' : 'FAIL'}</td><td>${esc(c.name)}</td><td>${esc(c.detail)}</td></tr>`).join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Concord ${r.kind} report</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;color:#111827}h1{font-size:20px}pre{background:#f3f4f6;padding:12px;border-radius:6px;overflow:auto}
figure{margin:16px 0}figcaption{font-weight:600;margin-bottom:4px}table{border-collapse:collapse}td{padding:3px 10px;border-bottom:1px solid #e5e7eb}.pass{color:#059669;font-weight:600}.fail{color:#dc2626;font-weight:600}</style></head>
<body><h1>Concord ${r.kind} — ${esc(r.load.startedAt)}</h1><p><code>${esc(r.command)}</code></p>
<pre id="summary">${esc(renderTable(r))}</pre>${throughput}${latency}
<h2>Audit</h2>${r.audit ? `<table id="audit">${auditRows}</table>` : '<p>not run</p>'}
<script type="application/json" id="data">${JSON.stringify({ ticks: t, statuses: r.load.statuses, latency: r.load.latency, events: r.events ?? [], cpu: r.cpu ?? null }).replace(/</g, '\\u003c')}</script>
</body></html>`;
}
