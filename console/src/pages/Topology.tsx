/** The service graph: who calls whom, with request rate, error share and p99 on every edge. */
import { useMemo, useState } from 'react';
import { errorColor, fmtMs, fmtPct, fmtRate, serviceColor } from '../format';
import { LABEL_W, NODE_H, type RoutedEdge, layoutTopology, routeEdges } from '../layout';
import { useStream } from '../stream';
import type { TopologyEdge, TopologyNode } from '../types';

const HEALTH_COLOR = { passing: '#16a34a', warning: '#d97706', critical: '#dc2626' } as const;

export function TopologyPage() {
  const { snapshot } = useStream();
  const [selected, setSelected] = useState<string | null>(null);
  const topology = snapshot?.topology;
  const { layout, routes } = useMemo(() => {
    const l = layoutTopology(
      (topology?.nodes ?? []).map((n) => n.name),
      topology?.edges ?? [],
    );
    return { layout: l, routes: routeEdges(l, topology?.edges ?? []) };
  }, [topology]);
  if (!topology) return <div className="empty">Waiting for the first snapshot…</div>;
  const nodeBy = new Map(topology.nodes.map((n) => [n.name, n]));
  const sel = selected ? nodeBy.get(selected) : undefined;
  return (
    <div className="page">
      <header className="page-head">
        <h1>Topology</h1>
        <p className="muted">
          {topology.nodes.length} services · {topology.edges.length} edges · numbers over the last {topology.windowSeconds} s (requests/s · 5xx share · p99)
        </p>
      </header>
      <div className="topology-wrap card">
        <svg
          data-testid="topology"
          className="topology"
          viewBox={`0 0 ${layout.width} ${layout.height}`}
          width={layout.width}
          height={layout.height}
          role="img"
          aria-label="Service topology"
        >
          <title>Service topology</title>
          <defs>
            {['#94a3b8', '#16a34a', '#d97706', '#dc2626'].map((c) => (
              <marker key={c} id={`arrow-${c.slice(1)}`} viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                <path d="M0,0 L10,5 L0,10 z" fill={c} />
              </marker>
            ))}
          </defs>
          {topology.edges.map((e) => (
            <Edge key={`${e.source}->${e.destination}`} edge={e} route={routes.get(`${e.source}->${e.destination}`)} />
          ))}
          {topology.nodes.map((n) => {
            const p = layout.nodes.get(n.name);
            return p ? (
              <Node key={n.name} node={n} x={p.x} y={p.y} w={p.w} selected={selected === n.name} onSelect={() => setSelected(selected === n.name ? null : n.name)} />
            ) : null;
          })}
        </svg>
      </div>
      <div className="legend muted">
        <span>
          <i style={{ background: '#16a34a' }} /> under 1% errors
        </span>
        <span>
          <i style={{ background: '#d97706' }} /> 1–5%
        </span>
        <span>
          <i style={{ background: '#dc2626' }} /> 5% and more
        </span>
        <span>
          <i style={{ background: '#94a3b8' }} /> idle in the window
        </span>
      </div>
      {sel && (
        <section className="card detail" data-testid="topology-detail">
          <h2>{sel.name}</h2>
          <dl className="facts">
            <dt>Instances</dt>
            <dd>
              {sel.passing} of {sel.instances} passing
            </dd>
            <dt>Versions</dt>
            <dd>{sel.versions.join(', ') || '–'}</dd>
            <dt>Served</dt>
            <dd>
              {fmtRate(sel.rate)} req/s · {fmtPct(sel.errorRate)} errors · p99 {fmtMs(sel.p99Ms)}
            </dd>
            <dt>Calls</dt>
            <dd>
              {topology.edges
                .filter((e) => e.source === sel.name)
                .map((e) => e.destination)
                .join(', ') || '–'}
            </dd>
            <dt>Called by</dt>
            <dd>
              {topology.edges
                .filter((e) => e.destination === sel.name)
                .map((e) => e.source)
                .join(', ') || '–'}
            </dd>
          </dl>
        </section>
      )}
    </div>
  );
}

function Node({ node, x, y, w, selected, onSelect }: { node: TopologyNode; x: number; y: number; w: number; selected: boolean; onSelect: () => void }) {
  const external = node.kind === 'external';
  return (
    // biome-ignore lint/a11y/useSemanticElements: an SVG group cannot be a <button>
    <g
      data-testid={`topology-node-${node.name}`}
      data-health={node.health}
      className={`topo-node${selected ? ' selected' : ''}`}
      transform={`translate(${x},${y})`}
      onClick={onSelect}
      onKeyDown={(e) => (e.key === 'Enter' || e.key === ' ') && onSelect()}
      role="button"
      tabIndex={0}
    >
      <rect width={w} height={NODE_H} rx={10} className="topo-box" strokeDasharray={external ? '5 4' : undefined} />
      {!external && <rect width={5} height={NODE_H} rx={2} fill={serviceColor(node.name)} />}
      <text x={external ? w / 2 : 16} y={external ? 32 : 27} textAnchor={external ? 'middle' : undefined} className="topo-name">
        {external ? 'clients' : node.name}
      </text>
      {!external && <circle cx={w - 13} cy={48} r={5} fill={HEALTH_COLOR[node.health]} />}
      <text x={external ? w / 2 : 16} y={external ? 50 : 52} textAnchor={external ? 'middle' : undefined} className="topo-sub">
        {external ? 'external' : `${node.passing}/${node.instances} up · ${node.versions.join(' ') || '–'}`}
      </text>
    </g>
  );
}

function Edge({ edge, route }: { edge: TopologyEdge; route: RoutedEdge | undefined }) {
  if (!route) return null;
  const color = errorColor(edge.rate, edge.errorRate);
  const label = `${fmtRate(edge.rate)}/s · ${fmtPct(edge.errorRate)} · ${fmtMs(edge.p99Ms)}`;
  return (
    <g data-testid={`topology-edge-${edge.source}-${edge.destination}`} data-rate={edge.rate} data-error-rate={edge.errorRate} className="topo-edge">
      <title>{`${edge.source} → ${edge.destination}: ${edge.requests} requests in the window — ${fmtRate(edge.rate)} req/s, ${fmtPct(edge.errorRate)} 5xx, p99 ${fmtMs(edge.p99Ms)}`}</title>
      <path
        d={route.d}
        fill="none"
        stroke={color}
        strokeWidth={edge.rate > 0 ? 1.6 + Math.min(3, Math.log10(1 + edge.rate) * 1.5) : 1.2}
        markerEnd={`url(#arrow-${color.slice(1)})`}
      />
      <rect x={route.labelX - LABEL_W / 2} y={route.labelY - 8} width={LABEL_W} height={16} rx={8} className="topo-label-bg" stroke={color} />
      <text x={route.labelX} y={route.labelY + 3.5} textAnchor="middle" className="topo-label">
        {label}
      </text>
    </g>
  );
}
