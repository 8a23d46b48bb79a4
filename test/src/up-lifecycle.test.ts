/**
 * `concord up` and the processes it starts when it goes away: killed with -9, every service
 * notices that its parent is gone and stops on its own; when whatever reads its output goes away
 * (`concord up | head`), it stops every process as on Ctrl-C. Either way no service is left
 * running. Services used to retry the log lines they could no longer write forever, at exit too.
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT, runsInstance } from '@concord/cli';
import { ONE_OF_EACH, outputDir, pollUntil, procStat } from './harness.js';

/** How long the services get to stop once their supervisor is gone (their shutdown bound is 8 s). */
const STOP_BOUND_MS = 20_000;
const START_BOUND_MS = 90_000;

/** Pids of the live processes whose parent is `ppid` (Linux /proc). */
function childrenOf(ppid: number): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => {
      const stat = procStat(pid);
      return stat !== null && stat.ppid === ppid && stat.state !== 'Z';
    });
}

const alive = (pid: number): boolean => {
  const state = procStat(pid)?.state;
  return state !== undefined && state !== 'Z';
};

/** Starts `concord up` on free ports in a fresh data dir; resolves when it prints its ready line. */
async function up(name: string): Promise<{ cli: ChildProcessWithoutNullStreams; services: number[]; exited: Promise<number | null> }> {
  const dir = outputDir(name);
  const topology = join(dir, 'topology.yaml');
  writeFileSync(topology, ONE_OF_EACH);
  const cli = spawn(process.execPath, [join(ROOT, 'cli/dist/src/main.js'), 'up'], {
    env: { ...process.env, CONCORD_DATA_DIR: join(dir, 'data'), CONCORD_GATEWAY_PORT: '0', CONCORD_CONTROL_PORT: '0', CONCORD_TOPOLOGY: topology, CONCORD_LOG_LEVEL: 'info' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => cli.once('exit', (code) => resolve(code)));
  let out = '';
  cli.stderr.on('data', (d) => (out = (out + d).slice(-20_000)));
  try {
    await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`concord up was not ready within ${START_BOUND_MS} ms:\n${out}`)), START_BOUND_MS);
    const onData = (d: Buffer) => {
      out = (out + d).slice(-20_000);
      if (out.includes('concord ready')) {
        clearTimeout(timer);
        cli.stdout.off('data', onData);
        resolve();
      }
    };
    cli.stdout.on('data', onData);
    void exited.then((code) => reject(new Error(`concord up exited (${code}) before it was ready:\n${out}`)));
    });
    const services = childrenOf(cli.pid as number);
    assert.ok(services.length >= 7, `concord up runs a process per instance (found ${services.length})`);
    return { cli, services, exited };
  } catch (err) {
    // Never leave a system running behind a failed start.
    const left = cli.pid ? childrenOf(cli.pid) : [];
    cli.kill('SIGKILL');
    for (const pid of left) process.kill(pid, 'SIGKILL');
    throw err;
  }
}

/** The pid of the instance `instanceId` among `pids` (its CONCORD_INSTANCE_ID). */
function instancePid(pids: number[], instanceId: string): number {
  const pid = pids.find((p) => runsInstance(p, instanceId));
  assert.ok(pid, `a process runs ${instanceId}`);
  return pid;
}

test('kill -9 of concord up: every service it started stops on its own', { skip: process.platform !== 'linux' && 'reads /proc' }, async () => {
  const { cli, services, exited } = await up('up-killed');
  // With it go the read ends of the services' output: the lines they log while stopping cannot
  // be written.
  process.kill(cli.pid as number, 'SIGKILL');
  await exited;
  try {
    await pollUntil(`every service of the killed concord up has exited (left: ${services.filter(alive).join(', ')})`, () => services.every((pid) => !alive(pid)), STOP_BOUND_MS, 100);
  } finally {
    for (const pid of services.filter(alive)) process.kill(pid, 'SIGKILL');
  }
});

test('concord up whose output is no longer read (concord up | head) stops every process, as on Ctrl-C', { skip: process.platform !== 'linux' && 'reads /proc' }, async () => {
  const { cli, services, exited } = await up('up-output-gone');
  cli.stdout.destroy();
  // Something to say: a service that dies makes the supervisor write a line.
  process.kill(instancePid(services, 'user-1'), 'SIGKILL');
  try {
    const code = await Promise.race([exited, new Promise<'running'>((r) => setTimeout(() => r('running'), STOP_BOUND_MS).unref())]);
    assert.equal(code, 0, 'concord up stopped and exited 0');
    assert.deepEqual(services.filter(alive), [], 'no service is left running');
  } finally {
    if (alive(cli.pid as number)) cli.kill('SIGKILL');
    for (const pid of services.filter(alive)) process.kill(pid, 'SIGKILL');
  }
});
