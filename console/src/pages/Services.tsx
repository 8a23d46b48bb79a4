/** Services and their instances (version, health, memory), circuit breakers and ejected endpoints. */
import { useEffect, useState } from 'react';
import { api, errorText } from '../api';
import { useAdminToken } from '../auth';
import { fmtAgo, fmtBytes, fmtMs, fmtPct, fmtRate, serviceColor } from '../format';
import { useStream } from '../stream';
import type { Instance } from '../types';

interface GatewayBreakers {
  policy: { failureThreshold: number; successThreshold: number; timeoutMs: number; deadlineMs: number };
  items: Array<{ service: string; state: string; failures: number; openedAt: string | null; [k: string]: unknown }>;
}

function breakerClass(state: string): string {
  const s = state.toLowerCase();
  return s === 'closed' ? 'ok' : s === 'open' ? 'bad' : 'warn';
}

export function ServicesPage() {
  const { snapshot } = useStream();
  const token = useAdminToken();
  const [breakers, setBreakers] = useState<GatewayBreakers | null>(null);
  const [breakerError, setBreakerError] = useState<string | null>(null);
  const tick = snapshot?.at;
  useEffect(() => {
    if (!token || !tick) return;
    let live = true;
    api<GatewayBreakers>('/api/console/gateway/gateway/breakers', { auth: true })
      .then((b) => {
        if (!live) return;
        setBreakers(b);
        setBreakerError(null);
      })
      .catch((err) => live && setBreakerError(errorText(err)));
    return () => {
      live = false;
    };
  }, [token, tick]);
  if (!snapshot) return <div className="empty">Waiting for the first snapshot…</div>;
  const { services, topology } = snapshot;
  const byService = new Map<string, Instance[]>();
  for (const i of services.instances) byService.set(i.service, [...(byService.get(i.service) ?? []), i]);
  const nodeOf = new Map(topology.nodes.map((n) => [n.name, n]));
  return (
    <div className="page">
      <header className="page-head">
        <h1>Services</h1>
        <p className="muted">
          {byService.size} services · {services.instances.length} instances · health from the registry's checks, memory from each instance's /metrics
        </p>
      </header>
      <div className="service-grid">
        {[...byService.entries()].map(([name, list]) => {
          const node = nodeOf.get(name);
          const passing = list.filter((i) => i.status === 'passing').length;
          return (
            <section key={name} className="card service-card" data-testid={`service-${name}`}>
              <div className="service-title">
                <span className="swatch" style={{ background: serviceColor(name) }} />
                <h2>{name}</h2>
                <span className={`badge ${passing === list.length ? 'ok' : passing > 0 ? 'warn' : 'bad'}`}>
                  {passing}/{list.length} passing
                </span>
                {node && (
                  <span className="muted small right">
                    {fmtRate(node.rate)} req/s · {fmtPct(node.errorRate)} 5xx · p99 {fmtMs(node.p99Ms)}
                  </span>
                )}
              </div>
              <table className="table compact">
                <thead>
                  <tr>
                    <th>Instance</th>
                    <th>Version</th>
                    <th>Address</th>
                    <th>Health</th>
                    <th>Memory</th>
                    <th>Started</th>
                  </tr>
                </thead>
                <tbody>
                  {list.map((i) => (
                    <tr key={i.id} data-testid={`instance-${i.id}`} data-status={i.status}>
                      <td className="mono">
                        {i.id}
                        {i.mtls && (
                          <span className="tag" title="holds a workload certificate (mTLS)">
                            mTLS
                          </span>
                        )}
                      </td>
                      <td>{i.version}</td>
                      <td className="mono">
                        {i.address}:{i.port}
                      </td>
                      <td title={i.checkOutput}>
                        <span className={`dot ${i.status}`} /> {i.status}
                      </td>
                      <td title={i.scrapeError ? `last scrape failed: ${i.scrapeError}` : undefined}>{fmtBytes(i.rssBytes)}</td>
                      <td>{fmtAgo(i.startedAt ?? i.registeredAt)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </section>
          );
        })}
      </div>

      <div className="two-col">
        <section className="card" data-testid="breakers">
          <h2>Circuit breakers</h2>
          <h3 className="muted small">Gateway (user dashboard)</h3>
          {!token && <p className="muted small">Log in as an admin (Sagas page) to see the gateway's breakers.</p>}
          {breakerError && <p className="error small">{breakerError}</p>}
          {breakers && (
            <table className="table compact">
              <thead>
                <tr>
                  <th>Upstream</th>
                  <th>State</th>
                  <th>Failures</th>
                  <th>Opened</th>
                </tr>
              </thead>
              <tbody>
                {breakers.items.map((b) => (
                  <tr key={b.service} data-testid={`breaker-${b.service}`}>
                    <td>{b.service}</td>
                    <td>
                      <span className={`badge ${breakerClass(b.state)}`}>{b.state.toLowerCase()}</span>
                    </td>
                    <td>{b.failures}</td>
                    <td>{b.openedAt ? fmtAgo(b.openedAt) : '–'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <h3 className="muted small">Mesh clients (concord_circuit_breaker_state)</h3>
          {services.breakers.length === 0 ? (
            <p className="muted small">No breaker state reported.</p>
          ) : (
            <table className="table compact">
              <tbody>
                {services.breakers.map((b) => (
                  <tr key={`${b.instanceId}-${b.destination}`}>
                    <td className="mono">{b.instanceId}</td>
                    <td>→ {b.destination}</td>
                    <td>
                      <span className={`badge ${breakerClass(b.state)}`}>{b.state.toLowerCase()}</span>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
        <section className="card" data-testid="ejections">
          <h2>Ejected endpoints</h2>
          {services.ejected.length === 0 ? (
            <p className="muted small">No endpoint is ejected by outlier detection right now.</p>
          ) : (
            <table className="table compact">
              <thead>
                <tr>
                  <th>Caller</th>
                  <th>Destination</th>
                  <th>Ejected now</th>
                </tr>
              </thead>
              <tbody>
                {services.ejected.map((e) => (
                  <tr key={`${e.instanceId}-${e.destination}`}>
                    <td className="mono">{e.instanceId}</td>
                    <td>{e.destination}</td>
                    <td>{e.count}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <h3 className="muted small">Ejections in the last 10 minutes</h3>
          {services.recentEjections.length === 0 ? (
            <p className="muted small">None.</p>
          ) : (
            <table className="table compact">
              <tbody>
                {services.recentEjections.map((e) => (
                  <tr key={`${e.atMs}-${e.instanceId}-${e.endpoint}`}>
                    <td>{fmtAgo(e.atMs)}</td>
                    <td className="mono">{e.instanceId}</td>
                    <td>
                      ejected <span className="mono">{e.endpoint}</span> of {e.destination}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
      </div>
    </div>
  );
}
