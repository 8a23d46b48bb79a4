import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pssBytesOf, renderStatus, type StatusRow } from '../src/status.js';

const row = (id: string, rssMiB: number, pssMiB: number | null): StatusRow => ({
  id,
  service: id.replace(/-\d+$/, ''),
  version: 'v1',
  address: '127.0.0.1',
  port: 1,
  status: 'passing',
  uptimeS: 5,
  rssBytes: rssMiB * 1_048_576,
  pssBytes: pssMiB === null ? null : pssMiB * 1_048_576,
  pid: 1,
});

describe('concord status memory', () => {
  test('PSS is read from smaps_rollup in kB and returned in bytes; a file without it gives null', () => {
    const rollup = '00400000-7ffc7b83a000 ---p 00000000 00:00 0   [rollup]\nRss:               84952 kB\nPss:               42498 kB\nPss_Dirty:         37584 kB\n';
    assert.equal(pssBytesOf(rollup), 42498 * 1024);
    assert.equal(pssBytesOf('Rss: 10 kB\n'), null);
  });

  test('the table sums RSS and, apart, PSS, saying which instances the PSS covers', () => {
    const all = renderStatus([row('order-1', 100, 60), row('user-1', 80, 40)]);
    assert.match(all, /total RSS 180\.0 MiB/);
    assert.match(all, /^total PSS 100\.0 MiB: shared pages counted once/m);
    const some = renderStatus([row('order-1', 100, 60), row('user-1', 80, null)]);
    assert.match(some, /^total PSS 60\.0 MiB \(1 of 2 instances: the others are not on this machine\)/m);
    assert.doesNotMatch(renderStatus([row('user-1', 80, null)]), /total PSS/);
  });
});
