/** A fixed-row-height virtual list: only the rows in view (plus a margin) are in the DOM. */
import { type ReactNode, useRef, useState } from 'react';

export function VirtualList<T>(props: {
  items: readonly T[];
  rowHeight: number;
  height: number;
  overscan?: number;
  render: (item: T, index: number) => ReactNode;
  keyOf: (item: T) => string;
  testId?: string;
}) {
  const { items, rowHeight, height, render, keyOf } = props;
  const overscan = props.overscan ?? 8;
  const [scrollTop, setScrollTop] = useState(0);
  const ref = useRef<HTMLDivElement>(null);
  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - overscan);
  const last = Math.min(items.length, Math.ceil((scrollTop + height) / rowHeight) + overscan);
  const rows: ReactNode[] = [];
  for (let i = first; i < last; i++) {
    const item = items[i] as T;
    rows.push(
      <div key={keyOf(item)} className="vrow" style={{ position: 'absolute', top: i * rowHeight, height: rowHeight, left: 0, right: 0 }}>
        {render(item, i)}
      </div>,
    );
  }
  return (
    <div
      ref={ref}
      className="vlist"
      style={{ height, overflowY: 'auto', position: 'relative' }}
      onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)}
      data-testid={props.testId}
      data-count={items.length}
    >
      <div style={{ height: items.length * rowHeight, position: 'relative' }}>{rows}</div>
    </div>
  );
}
