import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tracingOf } from '../src/config-status.js';

test('config status names each instance’s tracing: off, its sampler, a Telemetry percentage, and when its spans are not exported', () => {
  assert.equal(tracingOf({ tracing: null }), '-');
  assert.equal(tracingOf({ tracing: { enabled: false, sampling: null } }), 'off');
  assert.equal(tracingOf({ tracing: { enabled: true, sampling: null } }), 'environment');
  assert.equal(tracingOf({ tracing: { enabled: true, sampling: null, exporter: 'otlp' } }), 'environment');
  assert.equal(tracingOf({ tracing: { enabled: true, sampling: { percentage: 5, telemetry: 'mesh-default' } } }), '5 % (mesh-default)');
  assert.equal(
    tracingOf({ tracing: { enabled: true, sampling: { percentage: 5, telemetry: 'mesh-default' }, exporter: 'none' } }),
    '5 % (mesh-default), not exported',
  );
});
