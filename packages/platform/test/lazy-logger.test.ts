import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FastifyBaseLogger } from 'fastify';
import { lazyChildLoggerFactory } from '../src/service-kit/lazy-logger.js';

/** A pino-like logger at level info that records children and lines. */
function fakeLogger(bindings: Record<string, unknown> = {}, made: Array<Record<string, unknown>> = [], lines: string[] = []) {
  const order = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];
  const logger = {
    level: 'info',
    made,
    lines,
    isLevelEnabled: (l: string) => order.indexOf(l) >= order.indexOf('info'),
    child(b: Record<string, unknown>) {
      made.push(b);
      return fakeLogger({ ...bindings, ...b }, made, lines);
    },
    ...Object.fromEntries(order.map((l) => [l, (msg: string) => lines.push(`${l} ${JSON.stringify(bindings)} ${msg}`)])),
    silent() {},
  };
  return logger;
}

test('no child logger is made for a request that logs nothing (or only below the level)', () => {
  const parent = fakeLogger();
  const log = lazyChildLoggerFactory(parent as unknown as FastifyBaseLogger, { requestId: 'r1' }, {});
  log.debug('not shown');
  log.trace('not shown');
  const nested = log.child({ traceId: 't1' }, {});
  nested.debug('not shown either');
  assert.deepEqual(parent.made, []);
  assert.deepEqual(parent.lines, []);
});

test('the first enabled line makes the children once, with every binding', () => {
  const parent = fakeLogger();
  const log = lazyChildLoggerFactory(parent as unknown as FastifyBaseLogger, { requestId: 'r1' }, {});
  const nested = log.child({ traceId: 't1' }, {});
  nested.warn('one');
  nested.error('two');
  assert.deepEqual(parent.made, [{ requestId: 'r1' }, { traceId: 't1' }]);
  assert.deepEqual(parent.lines, ['warn {"requestId":"r1","traceId":"t1"} one', 'error {"requestId":"r1","traceId":"t1"} two']);
  log.info('three');
  assert.equal(parent.made.length, 2, 'the outer child was made already, for the inner one');
  assert.equal(parent.lines[2], 'info {"requestId":"r1"} three');
});
