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

const failing = (code: string) => Object.assign(new Error(`${code}: write failed`), { code });

/** A fake output: `full` answers EAGAIN, `accept` caps the bytes a write takes; records what went out. */
function fakeOutput() {
  const out = { written: '', calls: 0, slept: 0, full: false, accept: Number.POSITIVE_INFINITY, fail: '' };
  const io = {
    sleep: (ms: number) => {
      out.slept += ms;
    },
    write: (_fd: number, data: string | Buffer) => {
      out.calls++;
      if (out.fail) throw failing(out.fail);
      if (out.full) throw failing('EAGAIN');
      const bytes = Buffer.from(data);
      const n = Math.min(bytes.length, out.accept);
      out.written += bytes.subarray(0, n).toString();
      return n;
    },
  };
  return { out, io };
}

test('an output that is gone (EPIPE, EBADF) drops the line, and the next ones without trying again', () => {
  for (const code of ['EPIPE', 'EBADF']) {
    const { out, io } = fakeOutput();
    const sink = new LineSink(1, io);
    out.fail = code;
    sink.write('{"msg":"lost"}\n');
    assert.equal(sink.closed, true);
    sink.write('{"msg":"lost too"}\n');
    assert.equal(sink.dropped, 2);
    assert.equal(out.calls, 1, `after ${code} nothing is tried again`);
  }
});

test('any other write error drops that line only', () => {
  const { out, io } = fakeOutput();
  const sink = new LineSink(1, io);
  out.fail = 'ENOSPC';
  sink.write('{"msg":"lost"}\n');
  out.fail = '';
  sink.write('{"msg":"kept"}\n');
  assert.equal(sink.closed, false);
  assert.equal(sink.dropped, 1);
  assert.equal(out.written, '{"msg":"kept"}\n');
});

test('a full output (EAGAIN) holds a line at most MAX_BLOCKED_WRITE_MS; past it lines get one try each, without waiting, until one goes through', () => {
  const { out, io } = fakeOutput();
  const sink = new LineSink(1, io);
  out.full = true;
  sink.write('{"msg":"dropped after the bound"}\n');
  assert.equal(sink.dropped, 1);
  assert.ok(out.slept >= MAX_BLOCKED_WRITE_MS && out.slept <= MAX_BLOCKED_WRITE_MS + 10, `slept ${out.slept} ms`);
  const slept = out.slept;
  sink.write('{"msg":"dropped at once"}\n');
  assert.equal(sink.dropped, 2);
  assert.equal(out.slept, slept, 'a congested output is not waited for again');
  out.full = false;
  sink.write('{"msg":"through"}\n');
  assert.equal(out.written, '{"msg":"through"}\n');
  assert.equal(sink.closed, false, 'a full output is not a gone one');
});

test('a line cut short by a full output is finished before the next one: lines never run together', () => {
  const { out, io } = fakeOutput();
  out.accept = 5;
  // Five bytes go out, then the output is full past the bound: the rest waits.
  let calls = 0;
  const sink = new LineSink(1, {
    sleep: io.sleep,
    write: (fd, data) => {
      const n = io.write(fd, data);
      if (++calls === 1) out.full = true;
      return n;
    },
  });
  sink.write('{"msg":"first line"}\n');
  assert.equal(out.written, '{"msg');
  out.accept = Number.POSITIVE_INFINITY;
  out.full = false;
  sink.write('{"msg":"second"}\n');
  assert.equal(out.written, '{"msg":"first line"}\n{"msg":"second"}\n');
  assert.equal(sink.dropped, 0);
});

test('a reader that stops reading holds a logging process about MAX_BLOCKED_WRITE_MS, not until it reads again', async () => {
  const loggerUrl = new URL('../src/service-kit/logger.js', import.meta.url).href;
  // 20,000 lines (~2 MB) overflow the pipe and the reader's buffer many times over.
  const script = `
    import { createLogger } from ${JSON.stringify(loggerUrl)};
    const log = createLogger({ service: 't', instance: 't-1', version: 'v1' }, 'info');
    const t0 = Date.now();
    for (let i = 0; i < 20000; i++) log.info({ i, pad: 'x'.repeat(60) }, 'line');
    process.stderr.write('logged in ' + (Date.now() - t0) + ' ms\\n');
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pause();
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += String(d);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const timeout = new Promise<'held'>((resolve) => setTimeout(() => resolve('held'), 20_000).unref());
  const code = await Promise.race([exited, timeout]);
  if (code === 'held') child.kill('SIGKILL');
  assert.equal(code, 0, `the child logged and exited while its output went unread (stderr: ${stderr})`);
  assert.match(stderr, /logged in \d+ ms/);
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
