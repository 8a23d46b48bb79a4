/** The live snapshot from `/api/console/stream` (server-sent events), shared by every page. */
import { createContext, type ReactNode, useContext, useEffect, useState } from 'react';
import type { Snapshot } from './types';

export type StreamState = 'connecting' | 'live' | 'reconnecting';

interface StreamValue {
  snapshot: Snapshot | null;
  state: StreamState;
}

const StreamContext = createContext<StreamValue>({ snapshot: null, state: 'connecting' });

export function StreamProvider({ children }: { children: ReactNode }) {
  const [value, setValue] = useState<StreamValue>({ snapshot: null, state: 'connecting' });
  useEffect(() => {
    const es = new EventSource('/api/console/stream');
    es.addEventListener('snapshot', (e) => {
      try {
        const snapshot = JSON.parse((e as MessageEvent<string>).data) as Snapshot;
        setValue({ snapshot, state: 'live' });
      } catch {
        /* a torn frame: the next one replaces it */
      }
    });
    es.onopen = () => setValue((v) => ({ ...v, state: 'live' }));
    // EventSource reconnects by itself (the server says after how long).
    es.onerror = () => setValue((v) => ({ ...v, state: 'reconnecting' }));
    return () => es.close();
  }, []);
  return <StreamContext.Provider value={value}>{children}</StreamContext.Provider>;
}

export function useStream(): StreamValue {
  return useContext(StreamContext);
}
