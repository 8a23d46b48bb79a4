/** The console's shell: the left navigation, the live status, and the page for the path. */
import { MeshPage } from './pages/Mesh';
import { MetricsPage } from './pages/Metrics';
import { SagasPage } from './pages/Sagas';
import { ServicesPage } from './pages/Services';
import { TopologyPage } from './pages/Topology';
import { TraceView } from './pages/TraceView';
import { TracesPage } from './pages/Traces';
import { Link, useLocation } from './router';
import { useStream } from './stream';

const NAV = [
  { to: '/topology', label: 'Topology', icon: 'M4 12h4m8 0h4M8 12a2 2 0 1 0 4 0a2 2 0 1 0-4 0m4 0l4-6m-4 6l4 6' },
  { to: '/services', label: 'Services', icon: 'M4 5h16v5H4zM4 14h16v5H4zM7 7.5h.01M7 16.5h.01' },
  { to: '/mesh', label: 'Mesh', icon: 'M5 5h4v4H5zM15 5h4v4h-4zM10 15h4v4h-4zM7 9v3h10V9M12 12v3' },
  { to: '/traces', label: 'Traces', icon: 'M4 6h10M7 10h10M10 14h8M6 18h6' },
  { to: '/sagas', label: 'Sagas', icon: 'M5 6h3v3H5zM10.5 10.5h3v3h-3zM16 15h3v3h-3zM8 7.5h4.5v3M13.5 12h4v3' },
  { to: '/charts', label: 'Metrics', icon: 'M4 19h16M6 16l4-5 3 3 5-7' },
];

function Page({ path }: { path: string }) {
  const trace = /^\/traces\/([0-9a-f]{32})$/.exec(path);
  if (trace) return <TraceView traceId={trace[1] as string} />;
  const saga = /^\/sagas\/([^/]+)$/.exec(path);
  if (saga) return <SagasPage sagaId={decodeURIComponent(saga[1] as string)} />;
  switch (path) {
    case '/':
    case '/topology':
      return <TopologyPage />;
    case '/services':
      return <ServicesPage />;
    case '/mesh':
      return <MeshPage />;
    case '/traces':
      return <TracesPage />;
    case '/sagas':
      return <SagasPage sagaId={null} />;
    case '/charts':
      return <MetricsPage />;
    default:
      return (
        <div className="page">
          <h1>Not found</h1>
          <p className="muted">
            The console has no page at <span className="mono">{path}</span>. <Link to="/topology">Go to the topology</Link>.
          </p>
        </div>
      );
  }
}

export function App() {
  const { path } = useLocation();
  const { snapshot, state } = useStream();
  const active = path === '/' ? '/topology' : `/${path.split('/')[1] ?? ''}`;
  return (
    <div className="shell">
      <nav className="nav" aria-label="Console">
        <div className="brand">
          <svg viewBox="0 0 32 32" width="26" height="26" aria-hidden="true">
            <rect width="32" height="32" rx="7" fill="#334155" />
            <circle cx="10" cy="16" r="4" fill="#38bdf8" />
            <circle cx="22" cy="9" r="3.5" fill="#a78bfa" />
            <circle cx="22" cy="23" r="3.5" fill="#34d399" />
          </svg>
          <span>Concord</span>
        </div>
        <ul>
          {NAV.map((n) => (
            <li key={n.to}>
              <Link
                to={n.to}
                className={active === n.to ? 'active' : ''}
                data-testid={`nav-${n.label.toLowerCase()}`}
                aria-current={active === n.to ? 'page' : undefined}
              >
                <svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true">
                  <path d={n.icon} fill="none" stroke="currentColor" strokeWidth="1.7" strokeLinecap="round" strokeLinejoin="round" />
                </svg>
                {n.label}
              </Link>
            </li>
          ))}
        </ul>
        <div className="nav-foot">
          <div className={`live ${state}`} data-testid="stream-state" data-state={state}>
            <span className="pulse" /> {state === 'live' ? 'live' : state === 'connecting' ? 'connecting…' : 'reconnecting…'}
          </div>
          {snapshot && (
            <dl>
              <dt>instances</dt>
              <dd>{snapshot.services.instances.length}</dd>
              <dt>config</dt>
              <dd>v{snapshot.config.version}</dd>
              <dt>traces</dt>
              <dd>{snapshot.traces.stored.toLocaleString()}</dd>
            </dl>
          )}
        </div>
      </nav>
      <main className="main">
        <Page path={path} />
      </main>
    </div>
  );
}
