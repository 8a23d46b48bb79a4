import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { childExecArgv, childNodeDefaults } from '../src/supervisor/supervisor.js';
import { DEFAULT_TOPOLOGY } from '../src/paths.js';
import { loadTopology, processesOf } from '../src/supervisor/topology.js';

const semiSpaceMiB = (flags: string[]) => Number(/^--max-semi-space-size=(\d+)$/.exec(flags.find((f) => f.startsWith('--max-semi-space-size=')) ?? '')?.[1]);

describe('child process V8 flags', () => {
  test('order and the gateway get 16 MiB semi-spaces, every other app 2 MiB, all a bounded old space', () => {
    assert.equal(semiSpaceMiB(childNodeDefaults('order')), 16);
    assert.equal(semiSpaceMiB(childNodeDefaults('gateway')), 16);
    for (const app of ['control-plane', 'user', 'inventory', 'payment', 'points', 'recommendation']) assert.equal(semiSpaceMiB(childNodeDefaults(app)), 2, app);
    for (const app of ['order', 'user']) assert.ok(childNodeDefaults(app).includes('--max-old-space-size=192'), app);
  });

  test('CONCORD_CHILD_NODE_OPTIONS comes from the system’s environment and overrides the defaults; nodeArgs override both', () => {
    const env = { CONCORD_CHILD_NODE_OPTIONS: '--max-semi-space-size=8  --cpu-prof' };
    const flags = childExecArgv({ app: 'inventory', nodeArgs: ['--max-semi-space-size=4'] }, env);
    assert.deepEqual(flags, ['--max-semi-space-size=2', '--max-old-space-size=192', '--max-semi-space-size=8', '--cpu-prof', '--max-semi-space-size=4']);
    // Not this process's own environment: two systems started by one process can differ.
    process.env.CONCORD_CHILD_NODE_OPTIONS = '--from-the-process';
    try {
      assert.deepEqual(childExecArgv({ app: 'order', nodeArgs: [] }, {}), childNodeDefaults('order'));
    } finally {
      delete process.env.CONCORD_CHILD_NODE_OPTIONS;
    }
    assert.ok(childExecArgv({ app: 'order', nodeArgs: [] }, { CONCORD_SOURCE_MAPS: '1' }).includes('--enable-source-maps'));
  });

  // The 1 GiB target under load left ~120 MiB above the ~880 MiB measured with 2 MiB everywhere:
  // semi-spaces beyond this budget would spend it (two semi-spaces per process, each fully used under load).
  test('the default topology keeps its young generations within 96 MiB in all', () => {
    const processes = [{ app: 'control-plane' }, ...processesOf(loadTopology(DEFAULT_TOPOLOGY))];
    const totalMiB = processes.reduce((sum, p) => sum + 2 * semiSpaceMiB(childNodeDefaults(p.app)), 0);
    assert.ok(totalMiB <= 96, `young generations of the default topology: ${totalMiB} MiB`);
  });
});
