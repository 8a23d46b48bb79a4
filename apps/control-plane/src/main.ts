/**
 * The control plane process: service registry (Consul API subset) today; mesh configuration,
 * certificate authority, trace store and console join it in later issues.
 */
import { runService } from '@concord/platform';
import { Registry } from './registry/registry.js';
import { registryRoutes } from './registry/routes.js';

runService({
  name: 'control-plane',
  portEnv: 'CONCORD_CONTROL_PORT',
  // The control plane is the registry: it registers itself in-process, not over HTTP.
  register: false,
  setup(ctx) {
    const registry = new Registry({ dataDir: ctx.dataDir, log: ctx.log });
    ctx.onClose(() => registry.close());
    registryRoutes(ctx.app, registry);
    ctx.app.decorate('registry', registry);
  },
  afterListen(ctx, port) {
    const registry = (ctx.app as unknown as { registry: Registry }).registry;
    registry.register({
      id: ctx.instanceId,
      name: 'control-plane',
      address: ctx.kit.host,
      port,
      tags: [ctx.version],
      meta: { version: ctx.version, pid: String(process.pid), startedAt: new Date().toISOString() },
      weights: { Passing: 1, Warning: 1 },
      checks: [
        {
          checkId: `service:${ctx.instanceId}`,
          name: 'control-plane ready',
          type: 'http',
          http: `http://${ctx.kit.host}:${port}/health/ready`,
          intervalMs: ctx.kit.checkIntervalMs,
          timeoutMs: ctx.kit.checkTimeoutMs,
          deregisterAfterMs: ctx.kit.deregisterAfterMs,
          definition: { HTTP: `http://${ctx.kit.host}:${port}/health/ready`, Interval: `${ctx.kit.checkIntervalMs}ms` },
        },
      ],
    });
  },
});
