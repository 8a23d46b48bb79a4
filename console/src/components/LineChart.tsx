/** A small SVG line chart: one series, gaps where a value is missing, the latest value shown. */

export interface ChartPoint {
  t: number;
  v: number | null;
}

const W = 300;
const H = 84;
const PAD = { l: 4, r: 4, t: 8, b: 14 };

export function LineChart({
  points,
  color,
  title,
  format,
  fromMs,
  toMs,
  testId,
}: {
  points: readonly ChartPoint[];
  color: string;
  title: string;
  format: (v: number) => string;
  fromMs: number;
  toMs: number;
  testId?: string;
}) {
  const values = points.map((p) => p.v).filter((v): v is number => v !== null && Number.isFinite(v));
  const max = Math.max(...values, 0);
  const top = max === 0 ? 1 : max * 1.15;
  const span = Math.max(1, toMs - fromMs);
  const x = (t: number) => PAD.l + ((t - fromMs) / span) * (W - PAD.l - PAD.r);
  const y = (v: number) => PAD.t + (1 - v / top) * (H - PAD.t - PAD.b);
  // Split into runs at missing values.
  const runs: string[] = [];
  let run: string[] = [];
  for (const p of points) {
    if (p.v === null || !Number.isFinite(p.v)) {
      if (run.length > 0) runs.push(run.join(' '));
      run = [];
      continue;
    }
    run.push(`${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`);
  }
  if (run.length > 0) runs.push(run.join(' '));
  const last = [...points].reverse().find((p) => p.v !== null);
  return (
    <figure className="chart" data-testid={testId} data-points={points.length}>
      <figcaption>
        <span>
          {title} <span className="chart-max">max {format(max)}</span>
        </span>
        <b>{last && last.v !== null ? format(last.v) : '–'}</b>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none" role="img" aria-label={title}>
        <title>{`${title}: at most ${format(max)}`}</title>
        <line x1={PAD.l} x2={W - PAD.r} y1={H - PAD.b} y2={H - PAD.b} className="axis" />
        <line x1={PAD.l} x2={W - PAD.r} y1={y(top / 2)} y2={y(top / 2)} className="grid" />
        {runs.map((r) =>
          r.includes(' ') ? (
            <polyline key={r} points={r} fill="none" stroke={color} strokeWidth={1.6} vectorEffect="non-scaling-stroke" />
          ) : (
            <circle key={r} cx={Number(r.split(',')[0])} cy={Number(r.split(',')[1])} r={1.8} fill={color} />
          ),
        )}
      </svg>
    </figure>
  );
}
