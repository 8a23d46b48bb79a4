import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Outcome, type SagaDef, type SagaState, apply, begin, initialState, next, retry, stepKey, validateDef } from '../src/saga/machine.js';

const def: SagaDef = {
  type: 'order',
  steps: [
    { name: 'create', kind: 'compensatable', compensable: true },
    { name: 'reserve', kind: 'compensatable', compensable: true },
    { name: 'charge', kind: 'compensatable', compensable: true },
    { name: 'audit-note', kind: 'compensatable', compensable: false },
    { name: 'confirm', kind: 'retriable', compensable: false },
    { name: 'points', kind: 'retriable', compensable: false },
  ],
  retry: { baseMs: 10, capMs: 100, maxAttempts: 3, maxCompensationAttempts: 5 },
};

/** Drives the machine with scripted outcomes; returns the calls made and the final state. */
function drive(outcomes: (name: string, phase: string, attempt: number) => Outcome, maxCommands = 1000) {
  let s: SagaState = initialState();
  const calls: string[] = [];
  for (let i = 0; i < maxCommands; i++) {
    const cmd = next(def, 'saga-1', s);
    if (cmd.type !== 'execute') return { s, calls, cmd };
    s = begin(s);
    calls.push(`${cmd.phase === 'forward' ? '' : 'undo '}${cmd.name}#${cmd.attempt}`);
    s = apply(def, s, outcomes(cmd.name, cmd.phase, cmd.attempt), () => 0.5).state;
  }
  throw new Error('saga did not stop');
}

const ok: Outcome = { type: 'ok' };

test('a saga whose steps all succeed completes, each step once, in order', () => {
  const r = drive(() => ok);
  assert.equal(r.s.status, 'COMPLETED');
  assert.deepEqual(r.calls, ['create#1', 'reserve#1', 'charge#1', 'audit-note#1', 'confirm#1', 'points#1']);
});

test('a business refusal is not retried and undoes the finished steps in reverse', () => {
  const r = drive((name) => (name === 'charge' ? { type: 'business', error: 'insufficient funds' } : ok));
  assert.equal(r.s.status, 'COMPENSATED');
  assert.deepEqual(r.calls, ['create#1', 'reserve#1', 'charge#1', 'undo reserve#1', 'undo create#1']);
  assert.deepEqual(r.s.failure, { step: 'charge', kind: 'business', reason: 'insufficient funds' });
});

test('transient failures are retried up to the bound; past it the uncertain step is undone too', () => {
  const r = drive((name, phase) => (name === 'charge' && phase === 'forward' ? { type: 'transient', error: 'timeout' } : ok));
  assert.equal(r.s.status, 'COMPENSATED');
  assert.deepEqual(r.calls, ['create#1', 'reserve#1', 'charge#1', 'charge#2', 'charge#3', 'undo charge#1', 'undo reserve#1', 'undo create#1']);
  assert.equal(r.s.failure?.kind, 'exhausted');
});

test('a transient failure that recovers within the bound just continues', () => {
  const r = drive((name, _p, attempt) => (name === 'reserve' && attempt < 3 ? { type: 'transient', error: '503' } : ok));
  assert.equal(r.s.status, 'COMPLETED');
  assert.deepEqual(r.calls.slice(0, 4), ['create#1', 'reserve#1', 'reserve#2', 'reserve#3']);
});

test('steps with nothing to undo are skipped while compensating', () => {
  const r = drive((name) => (name === 'confirm' ? ok : ok));
  assert.equal(r.s.status, 'COMPLETED');
  const failing: SagaDef = { ...def, steps: [...def.steps.slice(0, 4), { name: 'last', kind: 'compensatable', compensable: true }] };
  let s = initialState();
  const calls: string[] = [];
  for (;;) {
    const cmd = next(failing, 's', s);
    if (cmd.type !== 'execute') break;
    s = begin(s);
    calls.push(`${cmd.phase}:${cmd.name}`);
    s = apply(failing, s, cmd.name === 'last' && cmd.phase === 'forward' ? { type: 'business', error: 'no' } : ok, () => 0).state;
  }
  assert.deepEqual(calls.filter((c) => c.startsWith('compensate')), ['compensate:charge', 'compensate:reserve', 'compensate:create']);
});

test('past the pivot a refusal or endless failure waits for an operator instead of undoing', () => {
  const r = drive((name) => (name === 'points' ? { type: 'transient', error: 'points down' } : ok));
  assert.equal(r.s.status, 'NEEDS_ATTENTION');
  assert.equal(r.s.resume, 'RUNNING');
  assert.equal(r.calls.filter((c) => c.startsWith('points')).length, 5);
  assert.ok(!r.calls.some((c) => c.startsWith('undo')), 'nothing is undone after the pivot');
  const resumed = retry(r.s);
  assert.equal(resumed.status, 'RUNNING');
  assert.equal(resumed.attempts, 0);
  assert.equal(def.steps[resumed.step]!.name, 'points');
});

test('a compensation that keeps failing ends in NEEDS_ATTENTION, and a retry resumes compensating', () => {
  const r = drive((name, phase) => {
    if (name === 'charge' && phase === 'forward') return { type: 'business', error: 'no funds' };
    if (name === 'reserve' && phase === 'compensate') return { type: 'transient', error: 'inventory down' };
    return ok;
  });
  assert.equal(r.s.status, 'NEEDS_ATTENTION');
  assert.equal(r.s.resume, 'COMPENSATING');
  assert.equal(r.calls.filter((c) => c.startsWith('undo reserve')).length, 5);
  const s = retry(r.s);
  assert.equal(next(def, 'saga-1', s).type, 'execute');
});

test('step keys are deterministic per saga, step and phase', () => {
  assert.equal(stepKey('s1', 'charge', 'forward'), 's1:charge');
  assert.equal(stepKey('s1', 'charge', 'compensate'), 's1:charge:undo');
  const cmd = next(def, 's1', initialState());
  assert.equal(cmd.type === 'execute' && cmd.key, 's1:create');
});

test('a crash between begin and apply counts the attempt, so a step that kills its process cannot loop forever', () => {
  let s = initialState();
  s = apply(def, begin(s), ok, Math.random).state; // create done
  // The process dies during every reserve attempt: begin is persisted, apply never happens.
  for (let i = 0; i < 3; i++) s = begin(s);
  assert.equal(s.attempts, 3);
  const t = apply(def, s, { type: 'transient', error: 'crash' }, Math.random);
  assert.equal(t.state.status, 'COMPENSATING');
});

test('random outcome sequences always end, and undo exactly the steps that may have applied, in reverse', () => {
  let seed = 42;
  const rnd = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (let run = 0; run < 2000; run++) {
    const applied: string[] = [];
    const r = drive((name, phase) => {
      const x = rnd();
      const out: Outcome = x < 0.6 ? ok : x < 0.8 ? { type: 'transient', error: 't' } : phase === 'forward' ? { type: 'business', error: 'b' } : { type: 'transient', error: 't' };
      // A transient forward outcome may or may not have applied: assume it did (worst case), so
      // it must be undone. (An attempt whose outcome is unknown before a refusal counts too.)
      if (phase === 'forward' && out.type !== 'business' && !applied.includes(name)) applied.push(name);
      return out;
    });
    assert.ok(['COMPLETED', 'COMPENSATED', 'NEEDS_ATTENTION'].includes(r.s.status));
    if (r.s.status === 'COMPENSATED') {
      const undone = [...new Set(r.calls.filter((c) => c.startsWith('undo ')).map((c) => c.slice(5).split('#')[0]))];
      const expected = applied.filter((n) => def.steps.find((s) => s.name === n)!.compensable).reverse();
      assert.deepEqual(undone, expected, r.calls.join(' '));
    }
  }
});

test('definitions are checked: no compensatable step after a retriable one, no duplicate names', () => {
  assert.throws(() => validateDef({ ...def, steps: [{ name: 'a', kind: 'retriable', compensable: false }, { name: 'b', kind: 'compensatable', compensable: true }] }));
  assert.throws(() => validateDef({ ...def, steps: [{ name: 'a', kind: 'compensatable', compensable: true }, { name: 'a', kind: 'compensatable', compensable: true }] }));
  validateDef(def);
});
