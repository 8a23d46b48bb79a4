/** Trace search (service, status, duration) over the control plane's trace store. */
import { type FormEvent, useEffect, useState } from 'react';
import { api, errorText } from '../api';
import { VirtualList } from '../components/VirtualList';
import { fmtAgo, fmtMs, nanosToMs, serviceColor } from '../format';
import { Link, navigate, useLocation } from '../router';
import { useStream } from '../stream';
import type { TraceSummary } from '../types';

interface SearchAnswer {
  items: TraceSummary[];
  stored: number;
  spans: number;
}

const LIMITS = [50, 200, 1000];
const ROW_H = 38;

export function TracesPage() {
  const { query } = useLocation();
  const { snapshot } = useStream();
  const service = query.get('service') ?? '';
  const status = query.get('status') ?? '';
  const minDurationMs = query.get('minDurationMs') ?? '';
  const limit = query.get('limit') ?? '200';
  const [result, setResult] = useState<SearchAnswer | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [tookMs, setTookMs] = useState<number | null>(null);
  const [refresh, setRefresh] = useState(0);
  const [form, setForm] = useState({ service, status, minDurationMs, limit });
  const [traceId, setTraceId] = useState('');

  useEffect(() => setForm({ service, status, minDurationMs, limit }), [service, status, minDurationMs, limit]);

  // biome-ignore lint/correctness/useExhaustiveDependencies: `refresh` re-runs the same search
  useEffect(() => {
    const params = new URLSearchParams();
    if (service) params.set('service', service);
    if (status) params.set('status', status);
    if (minDurationMs) params.set('minDurationMs', minDurationMs);
    params.set('limit', limit);
    const ac = new AbortController();
    const t0 = performance.now();
    setLoading(true);
    api<SearchAnswer>(`/api/traces?${params}`, { signal: ac.signal })
      .then((r) => {
        setResult(r);
        setError(null);
        setTookMs(performance.now() - t0);
      })
      .catch((err) => {
        if (!ac.signal.aborted) setError(errorText(err));
      })
      .finally(() => !ac.signal.aborted && setLoading(false));
    return () => ac.abort();
  }, [service, status, minDurationMs, limit, refresh]);

  const search = (e: FormEvent) => {
    e.preventDefault();
    const params = new URLSearchParams();
    if (form.service) params.set('service', form.service);
    if (form.status) params.set('status', form.status);
    if (form.minDurationMs) params.set('minDurationMs', form.minDurationMs);
    params.set('limit', form.limit);
    const to = `/traces?${params}`;
    if (to === window.location.pathname + window.location.search) setRefresh((n) => n + 1);
    else navigate(to);
  };

  const open = (e: FormEvent) => {
    e.preventDefault();
    const id = traceId.trim().toLowerCase();
    if (/^[0-9a-f]{32}$/.test(id)) navigate(`/traces/${id}`);
    else setError('a trace id is 32 hexadecimal characters');
  };

  const services = (snapshot?.topology.nodes ?? []).filter((n) => n.kind === 'service').map((n) => n.name);
  const items = result?.items ?? [];
  const height = Math.max(240, Math.min(items.length * ROW_H, window.innerHeight - 330));

  return (
    <div className="page">
      <header className="page-head">
        <h1>Traces</h1>
        <p className="muted">
          {snapshot ? `${snapshot.traces.stored.toLocaleString()} traces (${snapshot.traces.spans.toLocaleString()} spans) stored` : ''} · newest first
        </p>
      </header>
      <form className="card toolbar" onSubmit={search} data-testid="trace-search">
        <label>
          Service
          <select value={form.service} onChange={(e) => setForm({ ...form, service: e.target.value })} data-testid="trace-service">
            <option value="">any</option>
            {services.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Status
          <select value={form.status} onChange={(e) => setForm({ ...form, status: e.target.value })} data-testid="trace-status">
            <option value="">any</option>
            <option value="OK">OK</option>
            <option value="ERROR">error</option>
          </select>
        </label>
        <label>
          Min duration (ms)
          <input
            type="number"
            min={0}
            value={form.minDurationMs}
            onChange={(e) => setForm({ ...form, minDurationMs: e.target.value })}
            placeholder="0"
            data-testid="trace-min-duration"
          />
        </label>
        <label>
          Show
          <select value={form.limit} onChange={(e) => setForm({ ...form, limit: e.target.value })} data-testid="trace-limit">
            {LIMITS.map((l) => (
              <option key={l} value={String(l)}>
                {l}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" className="primary" data-testid="trace-search-submit">
          Search
        </button>
        <span className="muted small right">
          {loading ? 'searching…' : result ? `${items.length} shown${tookMs !== null ? ` · ${Math.round(tookMs)} ms` : ''}` : ''}
        </span>
      </form>
      <form className="inline-form" onSubmit={open}>
        <input
          value={traceId}
          onChange={(e) => setTraceId(e.target.value)}
          placeholder="open a trace by id (32 hex characters)"
          className="mono"
          data-testid="trace-id-input"
        />
        <button type="submit">Open</button>
      </form>
      {error && <p className="error">{error}</p>}
      <section className="card flush">
        <div className="trace-head">
          <span>Trace</span>
          <span>Root</span>
          <span>Services</span>
          <span className="num">Spans</span>
          <span className="num">Duration</span>
          <span>Started</span>
        </div>
        {result && items.length === 0 ? (
          <p className="empty">No trace matches.</p>
        ) : (
          <VirtualList
            items={items}
            rowHeight={ROW_H}
            height={height}
            keyOf={(t) => t.traceId}
            testId="trace-list"
            render={(t) => (
              <Link to={`/traces/${t.traceId}`} className={`trace-row${t.status === 'ERROR' ? ' error-row' : ''}`} data-testid={`trace-row-${t.traceId}`}>
                <span className="mono">{t.traceId.slice(0, 12)}…</span>
                <span className="ellipsis">
                  <b style={{ color: serviceColor(t.rootService) }}>{t.rootService}</b> {t.rootName}
                </span>
                <span className="chips">
                  {t.services.slice(0, 6).map((s) => (
                    <i key={s} title={s} style={{ background: serviceColor(s) }} />
                  ))}
                  {t.services.length > 6 && <span className="muted small">+{t.services.length - 6}</span>}
                </span>
                <span className="num">{t.spanCount}</span>
                <span className="num">{fmtMs(t.durationMs)}</span>
                <span className="muted">{fmtAgo(nanosToMs(t.startTimeUnixNano))}</span>
              </Link>
            )}
          />
        )}
      </section>
    </div>
  );
}
