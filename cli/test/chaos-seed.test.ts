/** `concord chaos --seed`: random fault targets come from a seeded source, so a run can face the same faults again. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mulberry32 } from '@concord/core';
import { pickInstance } from '../src/chaos/command.js';
import type { Supervisor } from '../src/supervisor/supervisor.js';

/** A supervisor's running children, as pickInstance reads them. */
function running(ids: string[]): Pick<Supervisor, 'children'> {
  const children = new Map(ids.map((id) => [id, { proc: {}, state: 'running', spec: { instanceId: id, service: id.replace(/-\d+$/, '') } }]));
  return { children } as unknown as Pick<Supervisor, 'children'>;
}

const sup = running(['control-plane-1', 'gateway-1', 'gateway-2', 'order-1', 'order-2', 'inventory-1', 'inventory-2', 'payment-1', 'points-1', 'user-1']);
const picks = (seed: number) =>
  Array.from(
    { length: 30 },
    (
      (random) => () =>
        pickInstance(sup, 'random', random)
    )(mulberry32(seed)),
  );

test('the same seed picks the same instances, in the same order; another seed picks others', () => {
  assert.deepEqual(picks(12345), picks(12345));
  assert.notDeepEqual(picks(12345), picks(54321));
});

test('random never picks the control plane; a service target picks only its instances', () => {
  assert.ok(!picks(7).includes('control-plane-1'));
  const random = mulberry32(7);
  for (let i = 0; i < 20; i++) assert.match(pickInstance(sup, 'order', random) ?? '', /^order-[12]$/);
  assert.equal(pickInstance(sup, 'nothing-like-it', random), null);
});
