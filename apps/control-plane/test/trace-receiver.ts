/** The control plane's trace routes on a real socket, with a store of their own, for tests. */
import type { AddressInfo } from 'node:net';
import { buildApp, createLogger } from '@concord/platform';
import { traceRoutes } from '../src/traces/routes.js';
import { TraceStore } from '../src/traces/store.js';

export const silentLog = createLogger({ service: 'control-plane', instance: 'test', version: 'v1' }, 'silent');

export async function startTraceReceiver(): Promise<{ store: TraceStore; baseUrl: string; close: () => Promise<void> }> {
  const store = new TraceStore();
  const app = buildApp({ log: silentLog, servedBy: 'control-plane@v1#test', bodyLimitBytes: 1_048_576 }).app;
  traceRoutes(app, store);
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { store, baseUrl: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, close: () => app.close() };
}
