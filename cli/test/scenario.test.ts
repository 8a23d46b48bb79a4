import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadScenario, needsNetworkLab, parseScenario, ScenarioError } from '../src/chaos/scenario.js';
import { ROOT } from '../src/paths.js';

describe('chaos scenarios', () => {
  test('every shipped scenario parses, and only the partition one needs a network lab', () => {
    const names = readdirSync(join(ROOT, 'cli', 'scenarios')).map((f) => f.replace(/\.yaml$/, ''));
    assert.ok(names.includes('kills') && names.includes('smoke') && names.includes('partitions'));
    for (const n of names) assert.equal(needsNetworkLab(loadScenario(n)), n === 'partitions', n);
  });

  test('a partition fault has a target and a duration (5 s by default)', () => {
    const s = parseScenario('faults:\n  - at: 1s\n    partition: order\n  - every: 10s\n    partition: random\n    for: 2s\n', 't');
    assert.deepEqual(
      s.faults.map((f) => f.action),
      [
        { kind: 'partition', target: 'order', forMs: 5000 },
        { kind: 'partition', target: 'random', forMs: 2000 },
      ],
    );
  });

  test('mistakes name the field: the control plane cannot be partitioned, bad durations, unknown fields, missing kinds', () => {
    const bad: Array<[string, RegExp]> = [
      ['faults:\n  - at: 1s\n    partition: control-plane\n', /faults\[0\]\.partition: the control plane stays/],
      ['faults:\n  - at: 1s\n    partition: order\n    for: soon\n', /faults\[0\]\.for/],
      ['faults:\n  - at: 1s\n    every: 2s\n    kill: random\n', /faults\[0\]: give exactly one of "at"/],
      ['faults:\n  - at: 1s\n', /faults\[0\]: needs one of kill: .*partition:/],
      ['loads: {}\n', /loads is not a known field/],
      ['load:\n  rate: -1\n', /load\.rate must be a number from 0/],
    ];
    for (const [text, re] of bad) assert.throws(() => parseScenario(text, 't'), (e: unknown) => e instanceof ScenarioError && re.test(e.message), text);
  });
});
