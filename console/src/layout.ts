/**
 * A deterministic layered layout for the topology: callers to the left of those they call.
 * Ranks start from hints (external clients, then the gateway, then the order orchestrator,
 * then everyone else) and are pushed right along edges (bounded, so cycles terminate); empty
 * layers are squeezed out; within a layer nodes are sorted by name.
 */

export interface LayoutNode {
  name: string;
  x: number;
  y: number;
  /** Width of the node's box. */
  w: number;
  layer: number;
}

export interface Layout {
  nodes: Map<string, LayoutNode>;
  width: number;
  height: number;
}

export const NODE_W = 164;
/** The external clients are a narrow stub, not a service box. */
export const EXTERNAL_W = 84;
export const NODE_H = 72;
/** Every edge ends in a straight run this long, where its label sits. */
export const LABEL_W = 128;
const TAIL = LABEL_W + 12;
const COL_GAP = TAIL + 44;
const ROW_GAP = 30;
const MARGIN = 28;

const HINTS: Record<string, number> = { external: 0, gateway: 1, order: 2 };
const DEFAULT_RANK = 3;

export function layoutTopology(names: readonly string[], edges: ReadonlyArray<{ source: string; destination: string }>): Layout {
  const rank = new Map<string, number>(names.map((n) => [n, HINTS[n] ?? DEFAULT_RANK]));
  // Longest-path relaxation, at most |V| passes.
  for (let pass = 0; pass < names.length; pass++) {
    let moved = false;
    for (const e of edges) {
      const s = rank.get(e.source);
      const d = rank.get(e.destination);
      if (s === undefined || d === undefined || e.source === e.destination) continue;
      if (d < s + 1 && d < names.length + DEFAULT_RANK) {
        rank.set(e.destination, s + 1);
        moved = true;
      }
    }
    if (!moved) break;
  }
  const used = [...new Set(rank.values())].sort((a, b) => a - b);
  const layerOf = new Map(used.map((r, i) => [r, i]));
  const layers: string[][] = used.map(() => []);
  for (const n of [...names].sort()) layers[layerOf.get(rank.get(n) as number) as number]?.push(n);
  const tallest = Math.max(1, ...layers.map((l) => l.length));
  const height = MARGIN * 2 + tallest * NODE_H + (tallest - 1) * ROW_GAP + 40;
  const widthOf = (name: string) => (name === 'external' ? EXTERNAL_W : NODE_W);
  const nodes = new Map<string, LayoutNode>();
  let x = MARGIN;
  layers.forEach((layer, li) => {
    const columnH = layer.length * NODE_H + (layer.length - 1) * ROW_GAP;
    const top = (height - columnH) / 2;
    layer.forEach((name, i) => {
      nodes.set(name, { name, layer: li, x, w: widthOf(name), y: top + i * (NODE_H + ROW_GAP) });
    });
    x += Math.max(...layer.map(widthOf)) + COL_GAP;
  });
  const width = x - COL_GAP + MARGIN;
  return { nodes, width, height };
}

export interface RoutedEdge {
  d: string;
  /** Centre of the label. */
  labelX: number;
  labelY: number;
}

/**
 * Paths for the edges: out of the caller's right side and into the callee's left side, at
 * anchors spread along the side (ordered by the other end's height, so edges do not cross
 * there), ending in a straight run that carries the label — labels of one callee never
 * overlap. An edge to the same or an earlier layer loops underneath.
 */
export function routeEdges(layout: Layout, edges: ReadonlyArray<{ source: string; destination: string }>): Map<string, RoutedEdge> {
  const key = (e: { source: string; destination: string }) => `${e.source}->${e.destination}`;
  const yOf = (n: string) => layout.nodes.get(n)?.y ?? 0;
  const outs = new Map<string, string[]>();
  const ins = new Map<string, string[]>();
  const forward = edges.filter((e) => {
    const a = layout.nodes.get(e.source);
    const b = layout.nodes.get(e.destination);
    return a && b && b.layer > a.layer;
  });
  for (const e of forward) {
    outs.set(e.source, [...(outs.get(e.source) ?? []), e.destination]);
    ins.set(e.destination, [...(ins.get(e.destination) ?? []), e.source]);
  }
  const anchor = (list: string[] | undefined, other: string, y: number) => {
    const sorted = [...(list ?? [])].sort((p, q) => yOf(p) - yOf(q) || (p < q ? -1 : 1));
    const i = Math.max(0, sorted.indexOf(other));
    return y + (NODE_H * (i + 1)) / (sorted.length + 1);
  };
  const out = new Map<string, RoutedEdge>();
  for (const e of edges) {
    const a = layout.nodes.get(e.source);
    const b = layout.nodes.get(e.destination);
    if (!a || !b) continue;
    if (b.layer > a.layer) {
      const x1 = a.x + a.w;
      const y1 = anchor(outs.get(e.source), e.destination, a.y);
      const x2 = b.x;
      const y2 = anchor(ins.get(e.destination), e.source, b.y);
      const bend = x2 - TAIL;
      const dx = Math.max(30, (bend - x1) / 2);
      out.set(key(e), { d: `M${x1},${y1} C${x1 + dx},${y1} ${bend - dx},${y2} ${bend},${y2} L${x2},${y2}`, labelX: x2 - TAIL / 2 - 4, labelY: y2 });
    } else {
      const xa = a.x + a.w / 2;
      const xb = b.x + b.w / 2 + (a === b ? 30 : 0);
      const low = Math.max(a.y, b.y) + NODE_H + 40;
      out.set(key(e), { d: `M${xa},${a.y + NODE_H} C${xa},${low} ${xb},${low} ${xb},${b.y + NODE_H}`, labelX: (xa + xb) / 2, labelY: low - 8 });
    }
  }
  return out;
}
