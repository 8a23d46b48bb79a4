import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mesh } from '../src/index.js';

test('the mesh namespace keeps the config types and exposes the decision modules', () => {
  const vs: mesh.VirtualService = { name: 'r', hosts: ['r'], http: [{ match: [], route: [{ destination: { host: 'r' }, weight: 100 }] }] };
  const cfg: mesh.MeshConfig = { ...mesh.emptyMeshConfig(1), virtualServices: [vs] };
  assert.equal(cfg.version, 1);
  assert.equal(mesh.serviceOfHost('r.default.svc.cluster.local'), 'r');
  for (const name of [
    'compileVirtualService',
    'pickDestination',
    'mirrorDestination',
    'checkRegex',
    'resolveDestination',
    'effectivePolicy',
    'createBalancer',
    'hashKeyOf',
    'OutlierDetector',
    'poolLimits',
    'acquire',
    'release',
    'resolveRetryPolicy',
    'decideRetry',
    'decideFault',
    'callDeadline',
    'attemptBudget',
    'inboundDeadline',
    'timeoutHeaderValue',
    'applyHeaderOperations',
    'authorize',
    'peerAuthenticationMode',
  ]) {
    assert.equal(typeof (mesh as Record<string, unknown>)[name], 'function', name);
  }
  assert.equal(mesh.compileVirtualService(vs).match({ method: 'GET', path: '/', headers: {} })?.route[0]?.weight, 100);
});
