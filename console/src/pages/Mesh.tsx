/** Mesh configuration: every resource with its status, and the recommendation canary slider. */
import { useCallback, useEffect, useRef, useState } from 'react';
import { api, errorText } from '../api';
import { canaryDocuments, currentV2Weight, destinationRuleFor, toYaml, virtualServiceFor } from '../canary';
import { fmtAgo } from '../format';
import { useStream } from '../stream';
import type { MeshResource } from '../types';

interface ConfigAnswer {
  version: number;
  resources: MeshResource[];
}

interface ApplyAnswer {
  version: number;
  changed: boolean;
  applied: Array<{ kind: string; name: string; action: string }>;
}

type ApplyState =
  | { state: 'idle' }
  | { state: 'applying'; weight: number }
  | { state: 'applied'; weight: number; version: number }
  | { state: 'rejected'; weight: number; reason: string };

const APPLY_DELAY_MS = 500;

export function MeshPage() {
  const { snapshot } = useStream();
  const [config, setConfig] = useState<ConfigAnswer | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [weight, setWeight] = useState<number | null>(null);
  const [apply, setApply] = useState<ApplyState>({ state: 'idle' });
  const timer = useRef<number | null>(null);
  const version = snapshot?.config.version;

  const load = useCallback(async () => {
    try {
      setConfig(await api<ConfigAnswer>('/api/config'));
      setLoadError(null);
    } catch (err) {
      setLoadError(errorText(err));
    }
  }, []);

  // The documents follow the version in force (the stream says when it moves).
  // biome-ignore lint/correctness/useExhaustiveDependencies: reload when the version changes
  useEffect(() => {
    void load();
  }, [load, version]);

  const current = config ? currentV2Weight(config.resources) : null;
  const shown = weight ?? current ?? 0;

  const submit = useCallback(
    async (w: number) => {
      if (!config) return;
      setApply({ state: 'applying', weight: w });
      try {
        const yaml = toYaml(canaryDocuments(config.resources, w));
        const r = await api<ApplyAnswer>('/api/config', { method: 'POST', body: yaml, headers: { 'content-type': 'application/yaml' } });
        setApply({ state: 'applied', weight: w, version: r.version });
        await load();
      } catch (err) {
        setApply({ state: 'rejected', weight: w, reason: errorText(err) });
      }
    },
    [config, load],
  );

  const onSlide = (w: number) => {
    setWeight(w);
    if (timer.current !== null) window.clearTimeout(timer.current);
    timer.current = window.setTimeout(() => {
      timer.current = null;
      void submit(w);
    }, APPLY_DELAY_MS);
  };
  useEffect(
    () => () => {
      if (timer.current !== null) window.clearTimeout(timer.current);
    },
    [],
  );

  const resources = snapshot?.config.resources ?? [];
  const preview = config ? toYaml(canaryDocuments(config.resources, shown)) : '';
  const hasDr = config ? destinationRuleFor(config.resources) !== undefined : false;
  const vs = config ? virtualServiceFor(config.resources) : undefined;

  return (
    <div className="page">
      <header className="page-head">
        <h1>Mesh configuration</h1>
        <p className="muted">
          Istio resources in force at version <strong data-testid="config-version">{snapshot?.config.version ?? config?.version ?? '–'}</strong>; a rejected
          change leaves the last good configuration in force.
        </p>
      </header>

      <section className="card" data-testid="canary">
        <h2>Recommendation canary</h2>
        <p className="muted small">
          Splits <span className="mono">recommendation</span> traffic between the <span className="mono">v1</span> and <span className="mono">v2</span> subsets
          with VirtualService <span className="mono">{vs?.metadata.name ?? 'recommendation'}</span>
          {hasDr ? '' : ' (a DestinationRule with subsets v1 and v2 is created with it)'}. Moving the slider applies it.
        </p>
        <div className="canary-row">
          <span className="canary-end">v1 {100 - shown}%</span>
          <input
            type="range"
            min={0}
            max={100}
            step={5}
            value={shown}
            disabled={!config}
            onChange={(e) => onSlide(Number(e.target.value))}
            data-testid="canary-slider"
            aria-label="Share of traffic to v2"
            className="slider"
          />
          <span className="canary-end">v2 {shown}%</span>
        </div>
        <div className="canary-bar" aria-hidden="true">
          <div className="v1" style={{ width: `${100 - shown}%` }} />
          <div className="v2" style={{ width: `${shown}%` }} />
        </div>
        <p data-testid="canary-status" data-state={apply.state} className={`small ${apply.state === 'rejected' ? 'error' : 'muted'}`}>
          {apply.state === 'idle' && (current === null ? 'No split in force: every instance gets traffic.' : `In force: v2 gets ${current}%.`)}
          {apply.state === 'applying' && `Applying v2 = ${apply.weight}%…`}
          {apply.state === 'applied' && `Applied: v2 = ${apply.weight}% at configuration version ${apply.version}.`}
          {apply.state === 'rejected' && `Rejected: ${apply.reason}`}
        </p>
        <details>
          <summary className="small">YAML that the slider applies</summary>
          <pre className="code">{preview}</pre>
        </details>
      </section>

      <section className="card">
        <h2>Resources</h2>
        {loadError && <p className="error small">{loadError}</p>}
        {resources.length === 0 ? (
          <p className="muted small">No resources: the mesh runs on defaults (round robin, no retries, PERMISSIVE mTLS).</p>
        ) : (
          <table className="table" data-testid="mesh-resources">
            <thead>
              <tr>
                <th>Kind</th>
                <th>Name</th>
                <th>State</th>
                <th>Version</th>
                <th>Source</th>
                <th>When</th>
                <th>Reason</th>
              </tr>
            </thead>
            <tbody>
              {resources.map((r) => (
                <tr key={`${r.kind}/${r.name}`} data-testid={`mesh-resource-${r.kind}-${r.name}`} data-state={r.state} data-version={r.version}>
                  <td>{r.kind}</td>
                  <td className="mono">{r.name}</td>
                  <td>
                    <span className={`badge ${r.state === 'applied' ? 'ok' : 'bad'}`}>{r.state}</span>
                  </td>
                  <td>{r.version}</td>
                  <td className="mono small">{r.source}</td>
                  <td>{fmtAgo(r.state === 'applied' ? (r.appliedAt ?? null) : (r.rejectedAt ?? null))}</td>
                  <td className="reason">
                    {r.reason ?? ''}
                    {r.state === 'rejected' && r.inForceVersion !== undefined && <span className="muted"> (version {r.inForceVersion} stays in force)</span>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>

      {config && config.resources.length > 0 && (
        <section className="card">
          <h2>Documents in force</h2>
          <pre className="code">{toYaml(config.resources)}</pre>
        </section>
      )}
    </div>
  );
}
