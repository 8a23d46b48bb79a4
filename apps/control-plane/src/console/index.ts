/**
 * The web console on the control plane: the metrics scraper, the console API and stream, and
 * the static web app. One call from main.ts wires it into the process's lifecycle.
 */
import type { ServiceContext } from '@concord/platform';
import type { MeshConfigService } from '../mesh-config/service.js';
import type { Registry } from '../registry/registry.js';
import type { TraceStore } from '../traces/store.js';
import { MetricsScraper } from './metrics-scraper.js';
import { consoleRoutes } from './routes.js';

export function startConsole(
  ctx: Pick<ServiceContext<unknown>, 'app' | 'log' | 'identity' | 'onClose' | 'onDrain'>,
  deps: { registry: Registry; meshConfig: MeshConfigService; traces: TraceStore },
): void {
  const scraper = new MetricsScraper({ registry: deps.registry, log: ctx.log });
  if (ctx.identity?.current) scraper.setTls(ctx.identity.current);
  ctx.identity?.onRotate((m) => scraper.setTls(m));
  const routes = consoleRoutes(ctx.app, { ...deps, scraper, log: ctx.log });
  scraper.start();
  // Streams end as shutdown begins, so they do not hold the drain until its timeout.
  ctx.onDrain(() => routes.close());
  ctx.onClose(() => {
    routes.close();
    scraper.close();
  });
}
