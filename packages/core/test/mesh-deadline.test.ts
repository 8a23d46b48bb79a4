import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  attemptBudget,
  callDeadline,
  effectiveTimeout,
  inboundDeadline,
  MAX_TIMEOUT_HEADER_MS,
  parseTimeoutHeader,
  remainingMs,
  TIMEOUT_HEADER,
  TRANSIT_ALLOWANCE_MS,
  timeoutHeaderValue,
} from '../src/mesh/deadline.js';
import { mulberry32 } from './mesh-helpers.js';

const INF = Number.POSITIVE_INFINITY;

test('the header is 1 to 8 ASCII digits of remaining milliseconds; anything else is refused', () => {
  assert.equal(TIMEOUT_HEADER, 'x-concord-timeout-ms');
  assert.equal(parseTimeoutHeader('0'), 0);
  assert.equal(parseTimeoutHeader('250'), 250);
  assert.equal(parseTimeoutHeader('00042'), 42);
  assert.equal(parseTimeoutHeader('99999999'), 99_999_999);
  for (const bad of ['', ' 1', '1 ', '-1', '+1', '1.5', '1e3', '0x10', '123456789', '１', '10ms', '1,2']) {
    assert.equal(parseTimeoutHeader(bad), null, JSON.stringify(bad));
  }
});

test('inbound: absent → no deadline; present → receipt + value; malformed or conflicting → error', () => {
  assert.deepEqual(inboundDeadline(undefined, 1000), { ok: true, deadlineMs: INF });
  assert.deepEqual(inboundDeadline([], 1000), { ok: true, deadlineMs: INF });
  assert.deepEqual(inboundDeadline('250', 1000), { ok: true, deadlineMs: 1250 });
  assert.deepEqual(inboundDeadline(['250', '250'], 1000), { ok: true, deadlineMs: 1250 });
  const conflict = inboundDeadline(['250', '300'], 1000);
  assert.equal(conflict.ok, false);
  const bad = inboundDeadline('soon', 1000);
  assert.equal(bad.ok, false);
  assert.match(bad.ok ? '' : bad.error, /x-concord-timeout-ms must be 1 to 8 digits/);
});

test('outbound header: remaining time at send time, less the transit allowance, rounded down; none without a deadline; 0 once expired; capped', () => {
  assert.equal(TRANSIT_ALLOWANCE_MS, 1);
  assert.equal(timeoutHeaderValue(INF, 5), null);
  assert.equal(timeoutHeaderValue(1250.9, 1000), '249');
  assert.equal(timeoutHeaderValue(1250.9, 1000, 0), '250');
  assert.equal(timeoutHeaderValue(1001.5, 1000), '0');
  assert.equal(timeoutHeaderValue(900, 1000), '0');
  assert.equal(timeoutHeaderValue(1e12, 0), String(MAX_TIMEOUT_HEADER_MS));
});

test('call deadline = min(start + route timeout, inbound deadline); 0 / undefined route timeout = none', () => {
  assert.equal(callDeadline(100, 1000), 1100);
  assert.equal(callDeadline(100, 1000, 600), 600);
  assert.equal(callDeadline(100, 1000, 5000), 1100);
  assert.equal(callDeadline(100, undefined), INF);
  assert.equal(callDeadline(100, 0, 700), 700);
  assert.equal(callDeadline(100, undefined, Number.NaN), INF);
});

test('attempt budget: the smaller of per-try timeout and what is left of the call', () => {
  assert.deepEqual(attemptBudget(100, 1100, 300), { timeoutMs: 300, deadlineMs: 400, limitedBy: 'per-try' });
  assert.deepEqual(attemptBudget(900, 1100, 300), { timeoutMs: 200, deadlineMs: 1100, limitedBy: 'call' });
  assert.deepEqual(attemptBudget(100, INF, 300), { timeoutMs: 300, deadlineMs: 400, limitedBy: 'per-try' });
  assert.deepEqual(attemptBudget(100, INF, undefined), { timeoutMs: INF, deadlineMs: INF, limitedBy: 'none' });
  assert.deepEqual(attemptBudget(1200, 1100, 300), { timeoutMs: 0, deadlineMs: 1100, limitedBy: 'call' });
  assert.equal(remainingMs(1100, 1200), 0);
  assert.equal(remainingMs(INF, 1200), INF);
});

test('effectiveTimeout: the one-shot form for a first try', () => {
  assert.deepEqual(effectiveTimeout(1000, 300, undefined, 0), { callDeadlineMs: 1000, attempt: { timeoutMs: 300, deadlineMs: 300, limitedBy: 'per-try' } });
  assert.deepEqual(effectiveTimeout(1000, 300, 200, 0), { callDeadlineMs: 200, attempt: { timeoutMs: 200, deadlineMs: 200, limitedBy: 'call' } });
  assert.deepEqual(effectiveTimeout(undefined, undefined, undefined, 0).attempt.limitedBy, 'none');
});

/**
 * A chain of services, each with its own monotonic clock (local = global + offset, offsets
 * arbitrary), random route and per-try timeouts, work before each call and transit delays.
 * Returns, per hop, how far the downstream's deadline lands after its caller's (in global time).
 */
function chainOvershoots(seed: number, maxTransitMs: number): number[] {
  const random = mulberry32(seed);
  const overshoots: number[] = [];
  for (let trial = 0; trial < 2000; trial++) {
    let globalNow = random() * 1e6;
    let offset = random() * 1e9;
    let inboundHeader: string | undefined;
    let callerTrueDeadline = INF;
    for (let hop = 0; hop < 6; hop++) {
      const local = () => globalNow + offset;
      if (inboundHeader === '0') break; // announced as expired: the receiver answers 504 without working
      const inbound = inboundDeadline(inboundHeader, local());
      assert.ok(inbound.ok);
      const trueInbound = inbound.deadlineMs - offset;
      if (callerTrueDeadline !== INF) overshoots.push(trueInbound - callerTrueDeadline);
      globalNow += random() * 20; // work before calling downstream
      const routeTimeout = random() < 0.3 ? undefined : 50 + random() * 2000;
      const perTry = random() < 0.5 ? undefined : 10 + random() * 500;
      const deadline = callDeadline(local(), routeTimeout, inbound.deadlineMs);
      const budget = attemptBudget(local(), deadline, perTry);
      assert.ok(budget.deadlineMs <= inbound.deadlineMs, 'a try never outlives the request it serves');
      if (budget.timeoutMs <= 0) break; // expired: the caller answers 504 and calls no one
      inboundHeader = timeoutHeaderValue(budget.deadlineMs, local()) ?? undefined;
      callerTrueDeadline = budget.deadlineMs - offset;
      globalNow += random() * maxTransitMs; // transit
      offset = random() * 1e9; // the next service's clock
    }
  }
  return overshoots;
}

test('property: with hops faster than the transit allowance, no downstream deadline outlives its caller, whatever the clock offsets', () => {
  const overshoots = chainOvershoots(1234, TRANSIT_ALLOWANCE_MS);
  assert.ok(overshoots.length > 5000);
  assert.ok(Math.max(...overshoots) <= 1e-6, `max overshoot ${Math.max(...overshoots)} ms`);
});

test('property: a slow hop lets the downstream outlive its caller by at most the transit beyond the allowance', () => {
  const overshoots = chainOvershoots(99, 10);
  assert.ok(Math.max(...overshoots) <= 10 - TRANSIT_ALLOWANCE_MS + 1e-6, `max overshoot ${Math.max(...overshoots)} ms`);
});
