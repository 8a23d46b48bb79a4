import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { mesh } from '../src/index.js';

const order = { app: 'order', version: 'v1' };

describe('tracingSampling (Telemetry resources → a workload’s sampling percentage)', () => {
  test('no Telemetry resource: null, so the process keeps OTEL_TRACES_SAMPLER', () => {
    assert.deepEqual(mesh.tracingSampling([], order), null);
    assert.deepEqual(mesh.tracingSampling([{ name: 'empty' }], order), null);
  });

  test('a mesh-wide resource applies to every workload', () => {
    const t = [{ name: 'mesh-default', randomSamplingPercentage: 10 }];
    assert.deepEqual(mesh.tracingSampling(t, order), { percentage: 10, telemetry: 'mesh-default' });
    assert.deepEqual(mesh.tracingSampling(t, { app: 'payment', version: 'v2' }), { percentage: 10, telemetry: 'mesh-default' });
  });

  test('a resource selecting the workload overrides the mesh-wide one; others keep the mesh-wide value', () => {
    const t = [
      { name: 'mesh-default', randomSamplingPercentage: 10 },
      { name: 'order-all', selector: { app: 'order' }, randomSamplingPercentage: 100 },
    ];
    assert.deepEqual(mesh.tracingSampling(t, order), { percentage: 100, telemetry: 'order-all' });
    assert.deepEqual(mesh.tracingSampling(t, { app: 'payment', version: 'v1' }), { percentage: 10, telemetry: 'mesh-default' });
    // Every selector label must match.
    const v2 = [{ name: 'order-v2', selector: { app: 'order', version: 'v2' }, randomSamplingPercentage: 0 }];
    assert.deepEqual(mesh.tracingSampling(v2, order), null);
    assert.deepEqual(mesh.tracingSampling(v2, { app: 'order', version: 'v2' }), { percentage: 0, telemetry: 'order-v2' });
  });

  test('a workload resource without a percentage inherits the mesh-wide one (Istio merges field by field)', () => {
    const t = [
      { name: 'mesh-default', randomSamplingPercentage: 25 },
      { name: 'order-other', selector: { app: 'order' } },
    ];
    assert.deepEqual(mesh.tracingSampling(t, order), { percentage: 25, telemetry: 'mesh-default' });
  });

  test('several resources select the workload: the first by name decides, whatever the input order', () => {
    const t: mesh.Telemetry[] = [
      { name: 'b', selector: { version: 'v1' }, randomSamplingPercentage: 50 },
      { name: 'a', selector: { app: 'order' }, randomSamplingPercentage: 5 },
    ];
    assert.deepEqual(mesh.tracingSampling(t, order), { percentage: 5, telemetry: 'a' });
    assert.deepEqual(mesh.tracingSampling([...t].reverse(), order), { percentage: 5, telemetry: 'a' });
  });

  test('an empty selector is mesh-wide', () => {
    assert.deepEqual(mesh.tracingSampling([{ name: 'x', selector: {}, randomSamplingPercentage: 1 }], order), { percentage: 1, telemetry: 'x' });
  });
});
