/**
 * A system can run its services from another built checkout (`bench:ab --a-root`): the supervisor
 * starts every process, the control plane included, from the root it is given, and a root that is
 * not built is named in the error.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEFAULT_TOPOLOGY, ROOT, appEntry } from '../src/paths.js';
import { Supervisor } from '../src/supervisor/supervisor.js';
import { appsOf, loadTopology, processesOf } from '../src/supervisor/topology.js';

/** An app that says where it runs from, reports listening (on a port nothing serves) and waits to be stopped. */
const FAKE_APP = `require('node:fs').appendFileSync(process.env.MARKER, process.argv[1] + '\\n');
process.send({ type: 'listening', port: 1 });
setInterval(() => {}, 1000);
`;

test('the supervisor starts every process from the built checkout it is given, and appEntry names a root that is not built', async () => {
  const root = mkdtempSync(join(tmpdir(), 'concord-apps-root-'));
  const marker = join(root, 'started.txt');
  const topology = loadTopology(DEFAULT_TOPOLOGY);
  const apps = appsOf(topology);
  for (const app of apps) {
    mkdirSync(join(root, 'apps', app, 'dist', 'src'), { recursive: true });
    writeFileSync(join(root, 'apps', app, 'dist', 'src', 'main.js'), FAKE_APP);
  }
  const sup = new Supervisor({
    topology,
    dataDir: join(root, 'data'),
    controlPort: 0,
    gatewayPort: 0,
    env: { ...process.env, MARKER: marker },
    output: () => {},
    // Nothing registers (the fakes serve nothing): start gives up soon after every process is up.
    readyTimeoutMs: 500,
    appsRoot: root,
  });
  try {
    await assert.rejects(sup.start());
    const started = readFileSync(marker, 'utf8').trim().split('\n');
    assert.equal(started.length, processesOf(topology).length + 1, 'every instance and the control plane started');
    for (const entry of started) assert.ok(entry.startsWith(join(root, 'apps')), `${entry} runs from the given checkout`);
    assert.deepEqual(new Set(started.map((e) => e.slice(join(root, 'apps').length + 1).split('/')[0])), apps);
  } finally {
    await sup.stop();
    rmSync(root, { recursive: true, force: true });
  }
  assert.equal(appEntry('order'), join(ROOT, 'apps', 'order', 'dist', 'src', 'main.js'));
  assert.throws(() => appEntry('order', '/nonexistent-checkout'), /run npm run build in \/nonexistent-checkout/);
});
