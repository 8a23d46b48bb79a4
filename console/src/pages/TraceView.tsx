/** One trace as a waterfall: bars placed by start and end, indented by parent, coloured by service. */
import { useEffect, useMemo, useState } from 'react';
import { api, errorText } from '../api';
import { fmtMs, serviceColor } from '../format';
import { Link } from '../router';
import type { Span } from '../types';
import { waterfall } from '../waterfall';

/** Where the time axis is labelled, as fractions of the trace. */
const TICKS = [0, 0.2, 0.4, 0.6, 0.8, 1];

export function TraceView({ traceId }: { traceId: string }) {
  const [spans, setSpans] = useState<Span[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  useEffect(() => {
    const ac = new AbortController();
    setSpans(null);
    api<{ traceId: string; spans: Span[] }>(`/api/traces/${traceId}`, { signal: ac.signal })
      .then((t) => setSpans(t.spans))
      .catch((err) => !ac.signal.aborted && setError(errorText(err)));
    return () => ac.abort();
  }, [traceId]);
  const w = useMemo(() => waterfall(spans ?? []), [spans]);
  const services = useMemo(() => [...new Set((spans ?? []).map((s) => s.service))].sort(), [spans]);
  const sel = w.rows.find((r) => r.span.spanId === selected);
  return (
    <div className="page">
      <header className="page-head">
        <p className="crumbs">
          <Link to="/traces">Traces</Link> / <span className="mono">{traceId}</span>
        </p>
        <h1>Trace</h1>
        {spans && (
          <p className="muted">
            {spans.length} spans · {services.length} services · {fmtMs(w.totalMs)} · started {new Date(w.startMs).toLocaleString()}
          </p>
        )}
      </header>
      {error && <p className="error">{error}</p>}
      {spans && (
        <>
          <div className="legend">
            {services.map((s) => (
              <span key={s} data-testid={`waterfall-service-${s}`}>
                <i style={{ background: serviceColor(s) }} /> {s}
              </span>
            ))}
          </div>
          <section className="card flush waterfall" data-testid="waterfall" data-spans={spans.length}>
            <div className="wf-row wf-head">
              <div className="wf-label">Span</div>
              <div className="wf-track">
                {TICKS.map((f) => (
                  <span key={f} className="wf-tick" style={{ left: `${f * 100}%` }}>
                    {fmtMs(w.totalMs * f)}
                  </span>
                ))}
              </div>
            </div>
            {w.rows.map((r) => {
              const left = (r.startMs / w.totalMs) * 100;
              const width = Math.max(0.3, (r.durationMs / w.totalMs) * 100);
              const color = serviceColor(r.span.service);
              // The duration goes after the bar, else before it, else inside it.
              const place = left + width <= 84 ? 'after' : left >= 16 ? 'before' : 'inside';
              const durStyle =
                place === 'after'
                  ? { left: `calc(${left + width}% + 6px)` }
                  : place === 'before'
                    ? { right: `calc(${100 - left}% + 6px)` }
                    : { left: `calc(${left}% + 6px)` };
              return (
                <button
                  type="button"
                  key={r.span.spanId}
                  className={`wf-row${selected === r.span.spanId ? ' selected' : ''}`}
                  onClick={() => setSelected(selected === r.span.spanId ? null : r.span.spanId)}
                  data-testid={`span-${r.span.spanId}`}
                  data-service={r.span.service}
                  data-depth={r.depth}
                >
                  <div className="wf-label" style={{ paddingLeft: 10 + r.depth * 14 }}>
                    <span className="swatch" style={{ background: color }} />
                    <b>{r.span.service}</b> <span className="ellipsis">{r.span.name}</span>
                  </div>
                  <div className="wf-track">
                    <div className={`wf-bar${r.span.status === 'ERROR' ? ' err' : ''}`} style={{ left: `${left}%`, width: `${width}%`, background: color }} />
                    <span className={`wf-dur${place === 'inside' ? ' inside' : ''}`} style={durStyle}>
                      {fmtMs(r.durationMs)}
                    </span>
                  </div>
                </button>
              );
            })}
          </section>
          {sel && (
            <section className="card detail" data-testid="span-detail">
              <h2>
                {sel.span.service} · {sel.span.name}
              </h2>
              <dl className="facts">
                <dt>Span</dt>
                <dd className="mono">{sel.span.spanId}</dd>
                <dt>Parent</dt>
                <dd className="mono">{sel.span.parentSpanId ?? '–'}</dd>
                <dt>Instance</dt>
                <dd className="mono">{sel.span.instance || '–'}</dd>
                <dt>Kind</dt>
                <dd>{sel.span.kind}</dd>
                <dt>Status</dt>
                <dd>
                  {sel.span.status}
                  {sel.span.statusMessage ? ` — ${sel.span.statusMessage}` : ''}
                </dd>
                <dt>Start / duration</dt>
                <dd>
                  +{fmtMs(sel.startMs)} / {fmtMs(sel.durationMs)}
                </dd>
                {Object.entries(sel.span.attributes).map(([k, v]) => (
                  <div key={k} className="fact-pair">
                    <dt className="mono">{k}</dt>
                    <dd className="mono">{String(v)}</dd>
                  </div>
                ))}
              </dl>
            </section>
          )}
        </>
      )}
      {!spans && !error && <div className="empty">Loading…</div>}
    </div>
  );
}
