/** Sagas (admin): list by status, the step timeline of one, and a retry for NEEDS_ATTENTION. */
import { type FormEvent, useCallback, useEffect, useState } from 'react';
import { api, errorText, setAdminToken } from '../api';
import { useAdminToken } from '../auth';
import { fmtAgo } from '../format';
import { Link, navigate, useLocation } from '../router';
import type { SagaDetail, SagaSummary } from '../types';

const STATUSES = ['NEEDS_ATTENTION', 'RUNNING', 'COMPENSATING', 'COMPLETED', 'COMPENSATED'] as const;
const TERMINAL = new Set(['COMPLETED', 'COMPENSATED']);
const LIST_REFRESH_MS = 3000;
const DETAIL_REFRESH_MS = 1000;

function statusClass(s: string): string {
  if (s === 'COMPLETED') return 'ok';
  if (s === 'NEEDS_ATTENTION') return 'bad';
  if (s === 'COMPENSATED') return 'neutral';
  return 'warn';
}

export function Login() {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    try {
      const r = await api<{ token: string }>('/api/console/login', { method: 'POST', json: { email, password } });
      setAdminToken(r.token);
      setError(null);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="card login" onSubmit={submit} data-testid="login-form">
      <h2>Administrator login</h2>
      <p className="muted small">Sagas are read through the gateway with an admin token (kept in this tab only).</p>
      <label>
        Email
        <input type="email" value={email} onChange={(e) => setEmail(e.target.value)} autoComplete="username" required data-testid="login-email" />
      </label>
      <label>
        Password
        <input
          type="password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          autoComplete="current-password"
          required
          data-testid="login-password"
        />
      </label>
      {error && <p className="error small">{error}</p>}
      <button type="submit" className="primary" disabled={busy} data-testid="login-submit">
        {busy ? 'Logging in…' : 'Log in'}
      </button>
    </form>
  );
}

export function SagasPage({ sagaId }: { sagaId: string | null }) {
  const token = useAdminToken();
  if (!token) {
    return (
      <div className="page">
        <header className="page-head">
          <h1>Sagas</h1>
        </header>
        <Login />
      </div>
    );
  }
  return sagaId ? <SagaView id={sagaId} /> : <SagaList />;
}

function SagaList() {
  const { query } = useLocation();
  const status = query.get('status') ?? '';
  const [items, setItems] = useState<SagaSummary[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(async () => {
    try {
      const r = await api<{ items: SagaSummary[] }>(`/api/console/gateway/admin/sagas?${status ? `status=${status}&` : ''}limit=200`, { auth: true });
      setItems(r.items);
      setError(null);
    } catch (err) {
      setError(errorText(err));
    }
  }, [status]);
  useEffect(() => {
    void load();
    const t = window.setInterval(() => void load(), LIST_REFRESH_MS);
    return () => window.clearInterval(t);
  }, [load]);
  return (
    <div className="page">
      <header className="page-head">
        <h1>Sagas</h1>
        <p className="muted">Newest first; refreshed every {LIST_REFRESH_MS / 1000} s.</p>
      </header>
      <div className="tabs" role="tablist">
        {['', ...STATUSES].map((s) => (
          <button
            type="button"
            role="tab"
            aria-selected={s === status}
            key={s || 'all'}
            className={`tab${s === status ? ' active' : ''}`}
            onClick={() => navigate(s ? `/sagas?status=${s}` : '/sagas')}
            data-testid={`saga-tab-${s || 'ALL'}`}
          >
            {s ? s.replace('_', ' ').toLowerCase() : 'all'}
          </button>
        ))}
        <button type="button" className="link right" onClick={() => setAdminToken(null)}>
          Log out
        </button>
      </div>
      {error && <p className="error">{error}</p>}
      <section className="card flush">
        <table className="table" data-testid="saga-list">
          <thead>
            <tr>
              <th>Saga</th>
              <th>Type</th>
              <th>Status</th>
              <th>Step</th>
              <th>Attempts</th>
              <th>Error</th>
              <th>Updated</th>
            </tr>
          </thead>
          <tbody>
            {(items ?? []).map((s) => (
              <tr
                key={s.id}
                data-testid={`saga-row-${s.id}`}
                data-status={s.status}
                className="clickable"
                onClick={() => navigate(`/sagas/${encodeURIComponent(s.id)}`)}
              >
                <td className="mono">
                  <Link to={`/sagas/${encodeURIComponent(s.id)}`}>{s.id}</Link>
                </td>
                <td>{s.type}</td>
                <td>
                  <span className={`badge ${statusClass(s.status)}`}>{s.status}</span>
                </td>
                <td>{s.step || '–'}</td>
                <td>{s.attempts}</td>
                <td className="reason">{s.error ?? ''}</td>
                <td>{fmtAgo(s.updatedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {items && items.length === 0 && <p className="empty">No saga{status ? ` is ${status}` : ''}.</p>}
      </section>
    </div>
  );
}

function SagaView({ id }: { id: string }) {
  const [saga, setSaga] = useState<SagaDetail | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [retry, setRetry] = useState<{ state: 'idle' | 'sending' | 'sent' | 'failed'; message?: string }>({ state: 'idle' });
  const load = useCallback(async () => {
    try {
      setSaga(await api<SagaDetail>(`/api/console/gateway/admin/sagas/${encodeURIComponent(id)}`, { auth: true }));
      setError(null);
    } catch (err) {
      setError(errorText(err));
    }
  }, [id]);
  const settled = saga !== null && (TERMINAL.has(saga.status) || (saga.status === 'NEEDS_ATTENTION' && retry.state !== 'sent'));
  useEffect(() => {
    void load();
    if (settled) return;
    const t = window.setInterval(() => void load(), DETAIL_REFRESH_MS);
    return () => window.clearInterval(t);
  }, [load, settled]);
  const doRetry = async () => {
    setRetry({ state: 'sending' });
    try {
      await api(`/api/console/gateway/admin/sagas/${encodeURIComponent(id)}/retry`, { method: 'POST', auth: true });
      setRetry({ state: 'sent' });
      await load();
    } catch (err) {
      setRetry({ state: 'failed', message: errorText(err) });
    }
  };
  return (
    <div className="page">
      <header className="page-head">
        <p className="crumbs">
          <Link to="/sagas">Sagas</Link> / <span className="mono">{id}</span>
        </p>
        <h1>Saga</h1>
      </header>
      {error && <p className="error">{error}</p>}
      {saga && (
        <>
          <section className="card">
            <div className="saga-head">
              <span className={`badge big ${statusClass(saga.status)}`} data-testid="saga-status" data-status={saga.status}>
                {saga.status}
              </span>
              <span>
                <b>{saga.type}</b> · step <span className="mono">{saga.step || '–'}</span> · {saga.attempts} attempts · updated {fmtAgo(saga.updatedAt)}
              </span>
              {saga.status === 'NEEDS_ATTENTION' && (
                <button type="button" className="primary right" onClick={doRetry} disabled={retry.state === 'sending'} data-testid="saga-retry">
                  {retry.state === 'sending' ? 'Retrying…' : 'Retry'}
                </button>
              )}
            </div>
            {saga.error && <p className="error small">Last error: {saga.error}</p>}
            {retry.state === 'sent' && <p className="muted small">Retry requested; the saga runs again.</p>}
            {retry.state === 'failed' && <p className="error small">{retry.message}</p>}
          </section>
          <section className="card">
            <h2>Timeline</h2>
            <ol className="timeline" data-testid="saga-timeline">
              {saga.events.map((e, i) => (
                <li
                  // biome-ignore lint/suspicious/noArrayIndexKey: events are an append-only log; the position is their identity
                  key={i}
                  className={`tl-${e.event.includes('fail') || e.event.includes('error') ? 'bad' : e.phase === 'compensate' ? 'warn' : e.event === 'operator-retry' ? 'info' : 'ok'}`}
                >
                  <span className="tl-time">{new Date(e.at).toLocaleTimeString([], { hour12: false })}</span>
                  <span className="tl-what">
                    <b>{e.event}</b>
                    {e.step && (
                      <>
                        {' '}
                        · <span className="mono">{e.step}</span>
                      </>
                    )}
                    {e.phase && <span className="muted"> ({e.phase})</span>}
                    {e.attempt > 0 && <span className="muted"> · attempt {e.attempt}</span>}
                  </span>
                  {e.detail && <span className="tl-detail">{e.detail}</span>}
                </li>
              ))}
            </ol>
          </section>
          <section className="card">
            <h2>Data</h2>
            <pre className="code">{JSON.stringify(saga.data, (k, v) => (k.startsWith('__') ? undefined : v), 2)}</pre>
          </section>
        </>
      )}
    </div>
  );
}
