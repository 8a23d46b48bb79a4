/** Number and time formatting shared by the pages. */

export function fmtRate(perS: number): string {
  if (perS === 0) return '0';
  if (perS < 0.1) return perS.toFixed(2);
  if (perS < 10) return perS.toFixed(1);
  return Math.round(perS).toString();
}

export function fmtPct(share: number): string {
  if (share === 0) return '0%';
  const p = share * 100;
  return p < 1 ? `${p.toFixed(2)}%` : p < 10 ? `${p.toFixed(1)}%` : `${Math.round(p)}%`;
}

export function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '–';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  if (ms < 10_000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

export function fmtBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '–';
  if (n < 1024) return `${n} B`;
  if (n < 1_048_576) return `${(n / 1024).toFixed(0)} KiB`;
  return `${(n / 1_048_576).toFixed(1)} MiB`;
}

export function fmtAgo(iso: string | number | null | undefined, nowMs = Date.now()): string {
  if (iso === null || iso === undefined) return '–';
  const t = typeof iso === 'number' ? iso : Date.parse(iso);
  if (Number.isNaN(t)) return '–';
  const s = Math.max(0, Math.round((nowMs - t) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}

export function fmtClock(ms: number): string {
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}

/** Nanoseconds since the epoch (a decimal string) → milliseconds (float). */
export function nanosToMs(ns: string): number {
  // Split to keep precision: Number() of a 19-digit string loses sub-microsecond digits.
  if (ns.length <= 6) return Number(ns) / 1e6;
  return Number(ns.slice(0, -6)) + Number(ns.slice(-6)) / 1e6;
}

const PALETTE = ['#2563eb', '#7c3aed', '#059669', '#d97706', '#db2777', '#0891b2', '#65a30d', '#dc2626', '#4f46e5', '#0d9488', '#c2410c', '#9333ea'];
const FIXED: Record<string, string> = {
  gateway: '#2563eb',
  order: '#7c3aed',
  inventory: '#059669',
  payment: '#d97706',
  points: '#db2777',
  user: '#0891b2',
  recommendation: '#65a30d',
  'control-plane': '#475569',
  external: '#64748b',
};

/** A stable colour per service name. */
export function serviceColor(name: string): string {
  const fixed = FIXED[name];
  if (fixed) return fixed;
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  return PALETTE[h % PALETTE.length] as string;
}

/** Edge colour by error share: idle grey, green, amber from 1%, red from 5%. */
export function errorColor(rate: number, errorRate: number): string {
  if (rate === 0) return '#94a3b8';
  if (errorRate >= 0.05) return '#dc2626';
  if (errorRate >= 0.01) return '#d97706';
  return '#16a34a';
}
