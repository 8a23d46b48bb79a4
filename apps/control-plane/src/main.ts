/**
 * The control plane process: service registry (Consul API subset) today; mesh configuration,
 * certificate authority, trace store and console join it in later issues.
 */
import { join } from 'node:path';
import { WorkloadIdentity, durationVar, intVar, runService } from '@concord/platform';
import { CertificateAuthority, caRoutes } from './ca/authority.js';
import { startConsole } from './console/index.js';
import { meshConfigRoutes } from './mesh-config/routes.js';
import { MeshConfigService, meshConfigSchema } from './mesh-config/service.js';
import { Registry } from './registry/registry.js';
import { registryRoutes } from './registry/routes.js';
import { prometheusRoutes } from './prometheus/targets.js';
import { traceRoutes } from './traces/routes.js';
import { TraceStore } from './traces/store.js';

let ca: CertificateAuthority | null = null;

runService({
  name: 'control-plane',
  portEnv: 'CONCORD_CONTROL_PORT',
  // The control plane is the registry: it registers itself in-process, not over HTTP.
  register: false,
  // The trace store does not trace itself (every export would produce more spans).
  tracing: false,
  config: {
    certTtlMs: durationVar('CONCORD_CERT_TTL', 3_600_000, 2000, 30 * 86_400_000),
    traceMaxTraces: intVar('CONCORD_TRACE_MAX_TRACES', 20_000, 100, 1_000_000),
    traceMaxSpans: intVar('CONCORD_TRACE_MAX_SPANS', 30_000, 1000, 10_000_000),
    traceMaxMiB: intVar('CONCORD_TRACE_MAX_MIB', 32, 1, 2048),
    traceRetentionMs: durationVar('CONCORD_TRACE_RETENTION', 3_600_000, 10_000, 7 * 86_400_000),
    ...meshConfigSchema,
  },
  // The control plane is the CA: its own identity is issued in-process.
  async identity({ log, dataDir, config }) {
    ca = new CertificateAuthority(join(dataDir, 'ca'), config.certTtlMs);
    const id = new WorkloadIdentity(async (publicKeyPem) => (ca as CertificateAuthority).issue('control-plane', publicKeyPem), log);
    await id.start();
    return id;
  },
  setup(ctx) {
    const registry = new Registry({ dataDir: ctx.dataDir, log: ctx.log });
    ctx.onClose(() => registry.close());
    if (ctx.identity?.current) registry.runner.setTls(ctx.identity.current);
    ctx.identity?.onRotate((m) => registry.runner.setTls(m));
    ctx.onClose(() => ctx.identity?.close());
    registryRoutes(ctx.app, registry);
    // Istio configuration: validated, versioned, persisted, watched by every data plane.
    const meshConfig = new MeshConfigService({ registry, dataDir: ctx.dataDir, log: ctx.log, settings: ctx.config });
    ctx.onClose(() => meshConfig.close());
    meshConfigRoutes(ctx.app, meshConfig, { instances: () => registry.catalog.all() });
    meshConfig.start();
    caRoutes(ctx.app, ca as CertificateAuthority);
    // Spans from every process (OTLP/HTTP), queried by the console and GET /api/traces.
    const traces = new TraceStore({ maxTraces: ctx.config.traceMaxTraces, maxSpans: ctx.config.traceMaxSpans, maxBytes: ctx.config.traceMaxMiB * 1_048_576, maxSpansPerTrace: 2000, retentionMs: ctx.config.traceRetentionMs });
    traceRoutes(ctx.app, traces);
    // The web console: metrics scraper, console API and stream, the built web app at `/`.
    startConsole(ctx, { registry, meshConfig, traces });
    prometheusRoutes(ctx.app, registry);
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
