/** The live status line of bench, chaos and the audit: in place on a terminal, readable in a log. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProgressLine } from '../src/progress.js';

function sink(isTTY: boolean) {
  const writes: string[] = [];
  return { out: { isTTY, write: (s: string) => writes.push(s) }, writes, text: () => writes.join('') };
}

test('on a terminal every state rewrites the line in place, and ending it moves on to a new line', () => {
  const s = sink(true);
  const p = new ProgressLine(s.out, { now: () => 0 });
  p.update('1s  100/s');
  p.update('2s  120/s');
  p.end();
  assert.deepEqual(s.writes, ['\r\x1b[2K1s  100/s', '\r\x1b[2K2s  120/s', '\n']);
});

test('in a log a tick is a whole line, at most one per interval, and the last state is written when the line ends', () => {
  const s = sink(false);
  let now = 0;
  const p = new ProgressLine(s.out, { everyMs: 5000, now: () => now });
  for (let second = 1; second <= 12; second++) {
    now = second * 1000;
    p.update(`${second}s`);
  }
  p.end();
  assert.equal(s.text(), '1s\n6s\n11s\n12s\n', 'the first tick at once, then every 5 s, then the final state');
  assert.ok(!s.text().includes('\r'), 'no carriage return reaches a log');
});

test('in a log, a state already written is not written again when the line ends', () => {
  const s = sink(false);
  const p = new ProgressLine(s.out, { everyMs: 5000, now: () => 0 });
  p.update('done');
  p.end();
  assert.equal(s.text(), 'done\n');
});

test('an event clears the live line on a terminal so that it starts a line of its own; elsewhere nothing is written', () => {
  const tty = sink(true);
  const p = new ProgressLine(tty.out, { now: () => 0 });
  p.clear();
  assert.deepEqual(tty.writes, [], 'nothing showing, nothing to clear');
  p.update('3s  90/s');
  p.clear();
  tty.out.write('[chaos] +3.0s kill -9 order-2\n');
  p.update('4s  95/s');
  p.end();
  assert.equal(tty.text(), '\r\x1b[2K3s  90/s\r\x1b[2K[chaos] +3.0s kill -9 order-2\n\r\x1b[2K4s  95/s\n');

  const log = sink(false);
  const q = new ProgressLine(log.out, { now: () => 0 });
  q.update('3s');
  q.clear();
  assert.equal(log.text(), '3s\n');
});

test('a line that ended starts afresh: the next phase is written at once', () => {
  const s = sink(false);
  let now = 0;
  const p = new ProgressLine(s.out, { everyMs: 5000, now: () => now });
  p.update('warm-up 1s');
  p.end();
  now = 1000;
  p.update('measured 1s');
  assert.equal(s.text(), 'warm-up 1s\nmeasured 1s\n');
});
