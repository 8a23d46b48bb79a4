/**
 * Prometheus HTTP service discovery (`http_sd_configs`): every registered instance's metrics
 * address with labels Prometheus can relabel on. Instances with a mesh identity also accept
 * plaintext scrapes unless their PeerAuthentication is STRICT (then scrape with TLS and a
 * workload certificate, or through Istio-style metrics merging — not provided).
 */
import { mesh } from '@concord/core';
import { Catalog } from '../registry/catalog.js';
import type { Registry } from '../registry/registry.js';

export interface SdTargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

export function prometheusTargets(catalog: Catalog): SdTargetGroup[] {
  return catalog
    .all()
    .filter((s) => s.port > 0)
    .sort((a, b) => (a.id < b.id ? -1 : 1))
    .map((s) => ({
      targets: [`${s.address.includes(':') ? `[${s.address}]` : s.address}:${s.port}`],
      labels: {
        __metrics_path__: '/metrics',
        job: 'concord',
        service: s.name,
        instance_id: s.id,
        version: mesh.instanceVersion(s),
        health: Catalog.aggregate(s.checks),
      },
    }));
}

export function prometheusRoutes(app: import('fastify').FastifyInstance, registry: Registry): void {
  app.get('/api/prometheus/targets', async () => prometheusTargets(registry.catalog));
}
