import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Command, type ReservationStatus, STATUSES, type Stored, plan } from '../src/domain/reservation.js';

const NOW = 1_000_000;
const live = (status: ReservationStatus): Stored => ({ status, expiresAtMs: NOW + 60_000 });
const overdue: Stored = { status: 'RESERVED', expiresAtMs: NOW };

test('reserve of a new id creates it, taking units from available', () => {
  const p = plan('reserve', 'r', null, NOW);
  assert.deepEqual(p.transitions, [{ from: null, to: 'RESERVED', move: 'available->reserved' }]);
  assert.deepEqual(p.outcome, { ok: true, status: 'RESERVED', created: true });
});

test('a replayed reserve answers the stored reservation and moves nothing, unless it was released or expired', () => {
  for (const s of ['RESERVED', 'CONFIRMED', 'RESTOCKED'] as const) {
    assert.deepEqual(plan('reserve', 'r', live(s), NOW), { transitions: [], outcome: { ok: true, status: s, created: false } }, s);
  }
  for (const s of ['RELEASED', 'EXPIRED'] as const) {
    const p = plan('reserve', 'r', live(s), NOW);
    assert.deepEqual(p.transitions, []);
    assert.equal(p.outcome.ok, false);
    assert.equal(!p.outcome.ok && p.outcome.slug, 'reservation-released', s);
  }
});

test('confirm moves reserved units to sold once; repeats answer CONFIRMED without moving', () => {
  assert.deepEqual(plan('confirm', 'r', live('RESERVED'), NOW), {
    transitions: [{ from: 'RESERVED', to: 'CONFIRMED', move: 'reserved->sold' }],
    outcome: { ok: true, status: 'CONFIRMED', created: false },
  });
  assert.deepEqual(plan('confirm', 'r', live('CONFIRMED'), NOW), { transitions: [], outcome: { ok: true, status: 'CONFIRMED', created: false } });
  assert.deepEqual(plan('confirm', 'r', live('RESTOCKED'), NOW).outcome, { ok: true, status: 'RESTOCKED', created: false }, 'a late repeat after a restock');
});

test('confirm of a released, expired or unknown reservation is refused', () => {
  for (const s of ['RELEASED', 'EXPIRED'] as const) {
    const o = plan('confirm', 'r', live(s), NOW).outcome;
    assert.ok(!o.ok && o.httpStatus === 409 && o.slug === 'reservation-released', s);
  }
  const o = plan('confirm', 'r', null, NOW).outcome;
  assert.ok(!o.ok && o.httpStatus === 404 && o.slug === 'unknown-reservation');
});

test('release gives reserved units back once; released, expired and restocked answer 200 without moving', () => {
  assert.deepEqual(plan('release', 'r', live('RESERVED'), NOW).transitions, [{ from: 'RESERVED', to: 'RELEASED', move: 'reserved->available' }]);
  for (const s of ['RELEASED', 'EXPIRED', 'RESTOCKED'] as const) {
    assert.deepEqual(plan('release', 'r', live(s), NOW), { transitions: [], outcome: { ok: true, status: s, created: false } }, s);
  }
});

test('release of a confirmed reservation is refused (restock undoes a sale)', () => {
  const p = plan('release', 'r', live('CONFIRMED'), NOW);
  assert.deepEqual(p.transitions, []);
  assert.ok(!p.outcome.ok && p.outcome.httpStatus === 409 && p.outcome.slug === 'reservation-confirmed');
});

test('release of an unknown id records a tombstone without items, so a late reserve of it is refused', () => {
  const p = plan('release', 'r', null, NOW);
  assert.deepEqual(p.transitions, [{ from: null, to: 'RELEASED', move: null }]);
  assert.deepEqual(p.outcome, { ok: true, status: 'RELEASED', created: true });
  const late = plan('reserve', 'r', { status: 'RELEASED', expiresAtMs: null }, NOW).outcome;
  assert.ok(!late.ok && late.slug === 'reservation-released');
});

test('restock moves sold units back to available once; only confirmed reservations are restocked', () => {
  assert.deepEqual(plan('restock', 'r', live('CONFIRMED'), NOW).transitions, [{ from: 'CONFIRMED', to: 'RESTOCKED', move: 'sold->available' }]);
  assert.deepEqual(plan('restock', 'r', live('RESTOCKED'), NOW), { transitions: [], outcome: { ok: true, status: 'RESTOCKED', created: false } });
  for (const s of ['RESERVED', 'RELEASED', 'EXPIRED'] as const) {
    const p = plan('restock', 'r', live(s), NOW);
    assert.deepEqual(p.transitions, [], s);
    assert.ok(!p.outcome.ok && p.outcome.httpStatus === 409 && p.outcome.slug === 'reservation-not-confirmed', s);
  }
  const o = plan('restock', 'r', null, NOW).outcome;
  assert.ok(!o.ok && o.httpStatus === 404);
});

test('an overdue RESERVED reservation is expired first by every command, whether or not the sweeper ran', () => {
  const expire = { from: 'RESERVED', to: 'EXPIRED', move: 'reserved->available' };
  const cases: Array<[Command, boolean, string | null]> = [
    ['expire', true, null],
    ['release', true, null],
    ['confirm', false, 'reservation-released'],
    ['reserve', false, 'reservation-released'],
    ['restock', false, 'reservation-not-confirmed'],
  ];
  for (const [cmd, ok, slug] of cases) {
    const p = plan(cmd, 'r', overdue, NOW);
    assert.deepEqual(p.transitions, [expire], cmd);
    assert.equal(p.outcome.ok, ok, cmd);
    if (p.outcome.ok) assert.equal(p.outcome.status, 'EXPIRED');
    else assert.equal(p.outcome.slug, slug, cmd);
  }
});

test('the deadline is exclusive: one millisecond before it the reservation still holds', () => {
  const p = plan('confirm', 'r', { status: 'RESERVED', expiresAtMs: NOW + 1 }, NOW);
  assert.deepEqual(p.outcome, { ok: true, status: 'CONFIRMED', created: false });
  assert.deepEqual(plan('expire', 'r', { status: 'RESERVED', expiresAtMs: NOW + 1 }, NOW).transitions, []);
});

test('expire leaves every other status alone', () => {
  for (const s of STATUSES) {
    if (s === 'RESERVED') continue;
    assert.deepEqual(plan('expire', 'r', { status: s, expiresAtMs: NOW - 1 }, NOW), { transitions: [], outcome: { ok: true, status: s, created: false } }, s);
  }
});

test('applying a command twice: the repeat moves nothing and answers the same (idempotence over the whole machine)', () => {
  const cmds: Command[] = ['reserve', 'confirm', 'release', 'restock', 'expire'];
  for (const start of [null, ...STATUSES]) {
    for (const cmd of cmds) {
      const what = `${start ?? 'none'} --${cmd}--> twice`;
      const stored: Stored | null = start === null ? null : { status: start, expiresAtMs: start === 'RESERVED' ? NOW + 1000 : null };
      const first = plan(cmd, 'r', stored, NOW);
      const last = first.transitions.at(-1);
      const after: Stored | null = last ? { status: last.to, expiresAtMs: stored?.expiresAtMs ?? NOW + 1000 } : stored;
      const second = plan(cmd, 'r', after, NOW);
      assert.deepEqual(second.transitions, after === null ? first.transitions : [], what);
      if (first.outcome.ok) assert.deepEqual(second.outcome, { ...first.outcome, created: false }, what);
      else assert.deepEqual(second.outcome, first.outcome, what);
    }
  }
});
