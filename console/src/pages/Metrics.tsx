/** Request rate, 5xx rate and p99 latency per service over the last minutes (what each one served). */
import { useEffect, useState } from 'react';
import { api, errorText } from '../api';
import { LineChart } from '../components/LineChart';
import { fmtClock, fmtMs, fmtPct, fmtRate, serviceColor } from '../format';
import { useStream } from '../stream';
import type { SeriesPoint } from '../types';

interface SeriesAnswer {
  minutes: number;
  stepSeconds: number;
  series: Array<{ service: string; points: SeriesPoint[] }>;
}

const WINDOWS = [1, 5, 10];

export function MetricsPage() {
  const { snapshot } = useStream();
  const [minutes, setMinutes] = useState(5);
  const [data, setData] = useState<SeriesAnswer | null>(null);
  const [error, setError] = useState<string | null>(null);
  const tick = snapshot?.at;
  // biome-ignore lint/correctness/useExhaustiveDependencies: refetch on every snapshot (each scrape round)
  useEffect(() => {
    const ac = new AbortController();
    api<SeriesAnswer>(`/api/console/series?minutes=${minutes}`, { signal: ac.signal })
      .then((d) => {
        setData(d);
        setError(null);
      })
      .catch((err) => !ac.signal.aborted && setError(errorText(err)));
    return () => ac.abort();
  }, [minutes, tick]);
  const toMs = data?.series[0]?.points.at(-1)?.t ?? Date.now();
  const fromMs = toMs - minutes * 60_000;
  const series = (data?.series ?? []).filter((s) => s.service !== 'control-plane' || s.points.some((p) => p.rate > 0));
  return (
    <div className="page">
      <header className="page-head">
        <h1>Metrics</h1>
        <p className="muted">
          What each service answered (istio_requests_total and istio_request_duration_milliseconds, reporter="destination"), one point per{' '}
          {data?.stepSeconds ?? 2} s scrape
          {data ? ` · ${fmtClock(fromMs)} – ${fmtClock(toMs)}` : ''}.
        </p>
      </header>
      <div className="tabs">
        {WINDOWS.map((m) => (
          <button type="button" key={m} className={`tab${m === minutes ? ' active' : ''}`} onClick={() => setMinutes(m)} data-testid={`metrics-window-${m}`}>
            last {m} min
          </button>
        ))}
      </div>
      {error && <p className="error">{error}</p>}
      {data && series.length === 0 && (
        <p className="empty">No traffic recorded yet: the scraper keeps the last 10 minutes from when the control plane started.</p>
      )}
      <div className="chart-grid">
        {series.map((s) => (
          <section key={s.service} className="card chart-card" data-testid={`metrics-${s.service}`}>
            <h2>
              <span className="swatch" style={{ background: serviceColor(s.service) }} /> {s.service}
            </h2>
            <div className="chart-row">
              <LineChart
                title="requests/s"
                color="#2563eb"
                points={s.points.map((p) => ({ t: p.t, v: p.rate }))}
                format={fmtRate}
                fromMs={fromMs}
                toMs={toMs}
                testId={`chart-rate-${s.service}`}
              />
              <LineChart
                title="5xx share"
                color="#dc2626"
                points={s.points.map((p) => ({ t: p.t, v: p.rate > 0 ? p.errorRate : null }))}
                format={fmtPct}
                fromMs={fromMs}
                toMs={toMs}
                testId={`chart-errors-${s.service}`}
              />
              <LineChart
                title="p99"
                color="#7c3aed"
                points={s.points.map((p) => ({ t: p.t, v: p.p99Ms }))}
                format={(v) => fmtMs(v)}
                fromMs={fromMs}
                toMs={toMs}
                testId={`chart-p99-${s.service}`}
              />
            </div>
          </section>
        ))}
      </div>
    </div>
  );
}
