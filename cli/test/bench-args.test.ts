/** `concord bench`'s options: URLs are checked before anything starts, and --control goes with --gateway. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ArgError, parseArgs } from '../src/bench/args.js';
import { BENCH_ARGS, benchCommand } from '../src/bench/command.js';
import { CHAOS_ARGS } from '../src/chaos/command.js';

test('--gateway and --control take an http(s) URL, kept without a trailing slash; anything else is refused by name', () => {
  const a = parseArgs(['--gateway', 'http://127.0.0.1:8080/', '--control=http://127.0.0.1:7700'], BENCH_ARGS);
  assert.equal(a.gateway, 'http://127.0.0.1:8080');
  assert.equal(a.control, 'http://127.0.0.1:7700');
  assert.equal(parseArgs([], BENCH_ARGS).control, '', 'no control plane unless named');
  for (const bad of ['127.0.0.1:8080', 'localhost', 'ftp://127.0.0.1:8080']) {
    assert.throws(
      () => parseArgs(['--gateway', bad], BENCH_ARGS),
      (err: Error) => err instanceof ArgError && err.message === `--gateway=${bad} is not an http(s) URL such as http://127.0.0.1:8080`,
      bad,
    );
  }
  assert.throws(() => parseArgs(['--control', 'nope'], BENCH_ARGS), /--control=nope is not an http\(s\) URL/);
});

test("--control without --gateway is refused before anything starts (the bench reads its own system's control plane)", async () => {
  await assert.rejects(
    benchCommand(['--control', 'http://127.0.0.1:7700', '--out', '/nonexistent/never-made']),
    (err: Error) => err instanceof ArgError && /--control goes with --gateway/.test(err.message),
  );
});

test('an option without a default is undefined when not given, so 0 given is told from none (chaos overrides only what is given)', () => {
  const none = parseArgs([], CHAOS_ARGS);
  assert.equal(none.rate, undefined);
  assert.equal(none.seed, undefined);
  assert.equal(none.duration, undefined);
  assert.equal(none.scenario, 'kills', 'a default still applies');
  const given = parseArgs(['--rate', '0', '--seed=0', '--duration', '90s'], CHAOS_ARGS);
  assert.equal(given.rate, 0);
  assert.equal(given.seed, 0);
  assert.equal(given.duration, 90_000);
  assert.equal(parseArgs([], { quiet: { kind: 'flag', help: 'x' } }).quiet, false, 'a flag not given is false');
});
