/**
 * The log destination: lines reach the output whole; when the output is gone (the supervisor
 * reading a service's stdout died) logging drops lines instead of failing or retrying forever,
 * and the process still exits.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { LineSink, MAX_BLOCKED_WRITE_MS, createLogger } from '../src/service-kit/logger.js';

test('every line reaches the output whole, one JSON object per line with the service fields', () => {
  const path = join(mkdtempSync(join(tmpdir(), 'concord-log-')), 'out.log');
  const fd = openSync(path, 'w');
  const sink = new LineSink(fd);
  const log = createLogger({ service: 'order', instance: 'order-1', version: 'v1' }, 'info', sink);
  log.info({ n: 1 }, 'first');
  log.debug('below the level');
  log.warn({ text: 'é'.repeat(70_000) }, 'long, multi-byte');
  closeSync(fd);
  const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
  assert.equal(lines.length, 2);
  const [first, second] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(first?.msg, 'first');
  assert.equal(first?.service, 'order');
  assert.equal(first?.level, 'info');
  assert.equal(String(second?.text).length, 70_000);
  assert.equal(sink.dropped, 0);
});

test('an output that is gone (EPIPE, EBADF) drops the line, and the next ones without trying again', () => {
  const fd = openSync(join(mkdtempSync(join(tmpdir(), 'concord-log-')), 'out.log'), 'w');
  closeSync(fd);
  const sink = new LineSink(fd);
  sink.write('{"msg":"lost"}\n');
  assert.equal(sink.closed, true);
  sink.write('{"msg":"lost too"}\n');
  assert.equal(sink.dropped, 2);
});

test('a full output (EAGAIN) is retried for a bounded time per line, then the line is dropped and the next one tried', () => {
  const eagain = () => Object.assign(new Error('EAGAIN: resource temporarily unavailable'), { code: 'EAGAIN' });
  let slept = 0;
  let fullFor = 3;
  const written: string[] = [];
  const sink = new LineSink(1, {
    sleep: (ms) => {
      slept += ms;
    },
    write: (_fd, data) => {
      if (fullFor-- > 0) throw eagain();
      // Half of it fits: the rest goes on the next write.
      const text = String(data);
      const n = Math.ceil(Buffer.byteLength(text) / 2);
      written.push(Buffer.from(text).subarray(0, n).toString());
      return n;
    },
  });
  sink.write('{"msg":"waits"}\n');
  assert.equal(written.join(''), '{"msg":"waits"}\n');
  assert.ok(slept > 0 && slept < MAX_BLOCKED_WRITE_MS);
  assert.equal(sink.dropped, 0);

  fullFor = Number.POSITIVE_INFINITY;
  slept = 0;
  sink.write('{"msg":"dropped"}\n');
  assert.equal(sink.dropped, 1);
  assert.ok(slept >= MAX_BLOCKED_WRITE_MS && slept <= MAX_BLOCKED_WRITE_MS + 10, `slept ${slept} ms`);
  assert.equal(sink.closed, false, 'a full output is not a gone one');
  fullFor = 0;
  sink.write('{"msg":"next"}\n');
  assert.match(written.join(''), /"next"/);
});

test('a service whose stdout reader died still logs without failing and exits when it ends', async () => {
  const loggerUrl = new URL('../src/service-kit/logger.js', import.meta.url).href;
  // The child logs before and after its stdout's reader is gone, then exits: with pino's
  // default destination it retried the lost lines at exit forever.
  const script = `
    import { createLogger } from ${JSON.stringify(loggerUrl)};
    const log = createLogger({ service: 't', instance: 't-1', version: 'v1' }, 'info');
    log.info('before');
    process.stdin.once('data', () => {
      for (let i = 0; i < 200; i++) log.info({ i }, 'after the reader is gone');
      process.stderr.write('logged\\n');
      process.exit(0);
    });
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += String(d);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // The first line proves the child is up; then its reader goes and it is told to log on.
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  child.stdout.destroy();
  child.stdin.write('go\n');
  const timeout = new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 15_000).unref());
  const code = await Promise.race([exited, timeout]);
  if (code === 'hung') child.kill('SIGKILL');
  assert.equal(code, 0, `the child exits cleanly (stderr: ${stderr})`);
  assert.match(stderr, /logged/);
});
