/**
 * The orchestrated saga as a pure state machine. The shell (platform/saga) persists the state,
 * runs the command this module returns and feeds the outcome back. Nothing here does I/O;
 * time and randomness come in as arguments.
 *
 * Steps are `compensatable` (a failure undoes the finished steps in reverse) or `retriable`
 * (after the pivot: must eventually succeed; failures are retried, and past the bound the saga
 * waits for an operator as NEEDS_ATTENTION). Compensations retry until they succeed, then
 * likewise NEEDS_ATTENTION.
 */
import { invariant } from '../assert.js';
import { backoffDelayMs } from '../backoff.js';

export type StepKind = 'compensatable' | 'retriable';

export interface StepDef {
  name: string;
  kind: StepKind;
  /** False when the step has nothing to undo (compensation is skipped). */
  compensable: boolean;
}

export interface RetryPolicy {
  baseMs: number;
  capMs: number;
  /** Attempts of a forward step before giving up on it (transient failures). */
  maxAttempts: number;
  /** Attempts of a compensation (or of a retriable step) before NEEDS_ATTENTION. */
  maxCompensationAttempts: number;
}

export interface SagaDef {
  type: string;
  steps: readonly StepDef[];
  retry: RetryPolicy;
}

export type SagaStatus = 'RUNNING' | 'COMPENSATING' | 'COMPLETED' | 'COMPENSATED' | 'NEEDS_ATTENTION';
export type Phase = 'forward' | 'compensate';

export interface SagaFailure {
  step: string;
  /** business: the participant refused (not retried); exhausted: transient failures past the bound. */
  kind: 'business' | 'exhausted';
  reason: string;
}

export interface SagaState {
  status: SagaStatus;
  /** Index of the step being run (forward) or undone (compensate). */
  step: number;
  /** Attempts made of the current step in the current phase. */
  attempts: number;
  /** The first failure that turned the saga around, if any. */
  failure: SagaFailure | null;
  /** The last error seen (for operators). */
  lastError: string | null;
  /** Where a NEEDS_ATTENTION saga resumes when retried. */
  resume: 'RUNNING' | 'COMPENSATING' | null;
}

export type Outcome = { type: 'ok' } | { type: 'transient'; error: string } | { type: 'business'; error: string };

export type Command =
  | { type: 'execute'; step: number; name: string; phase: Phase; attempt: number; key: string }
  | { type: 'finished'; status: 'COMPLETED' | 'COMPENSATED' }
  | { type: 'halt' };

export function initialState(): SagaState {
  return { status: 'RUNNING', step: 0, attempts: 0, failure: null, lastError: null, resume: null };
}

export function isTerminal(status: SagaStatus): boolean {
  return status === 'COMPLETED' || status === 'COMPENSATED';
}

/** The deterministic idempotency key of one step call: the same on every retry and after a crash. */
export function stepKey(sagaId: string, step: string, phase: Phase): string {
  return phase === 'forward' ? `${sagaId}:${step}` : `${sagaId}:${step}:undo`;
}

/** Skips steps that have nothing to undo. */
function nextCompensable(def: SagaDef, from: number): number {
  let i = from;
  while (i >= 0 && !def.steps[i]!.compensable) i--;
  return i;
}

export function validateDef(def: SagaDef): void {
  invariant(def.steps.length > 0, `saga ${def.type} has no steps`);
  let seenRetriable = false;
  const names = new Set<string>();
  for (const s of def.steps) {
    invariant(!names.has(s.name), `saga ${def.type}: duplicate step ${s.name}`);
    names.add(s.name);
    if (s.kind === 'retriable') seenRetriable = true;
    invariant(!(seenRetriable && s.kind === 'compensatable'), `saga ${def.type}: compensatable step ${s.name} after a retriable one`);
  }
  invariant(def.retry.maxAttempts >= 1 && def.retry.maxCompensationAttempts >= 1, `saga ${def.type}: attempts must be >= 1`);
}

/** What to do now. */
export function next(def: SagaDef, sagaId: string, s: SagaState): Command {
  if (s.status === 'COMPLETED' || s.status === 'COMPENSATED') return { type: 'finished', status: s.status };
  if (s.status === 'NEEDS_ATTENTION') return { type: 'halt' };
  const phase: Phase = s.status === 'RUNNING' ? 'forward' : 'compensate';
  const step = def.steps[s.step];
  invariant(step, `saga ${sagaId}: step ${s.step} out of range in ${s.status}`);
  return { type: 'execute', step: s.step, name: step.name, phase, attempt: s.attempts + 1, key: stepKey(sagaId, step.name, phase) };
}

/** Records that an attempt is starting (persisted before the call, so crashes count). */
export function begin(s: SagaState): SagaState {
  return { ...s, attempts: s.attempts + 1 };
}

export interface Transition {
  state: SagaState;
  /** Wait this long before the next command (a retry backoff), else 0. */
  delayMs: number;
}

function compensateFrom(def: SagaDef, s: SagaState, from: number, failure: SagaFailure): Transition {
  const i = nextCompensable(def, from);
  if (i < 0) return { state: { ...s, status: 'COMPENSATED', step: 0, attempts: 0, failure, lastError: failure.reason }, delayMs: 0 };
  return { state: { ...s, status: 'COMPENSATING', step: i, attempts: 0, failure, lastError: failure.reason }, delayMs: 0 };
}

/** Applies the outcome of the attempt that `begin` started. */
export function apply(def: SagaDef, s: SagaState, outcome: Outcome, random: () => number): Transition {
  invariant(s.status === 'RUNNING' || s.status === 'COMPENSATING', `apply in ${s.status}`);
  invariant(s.attempts >= 1, 'apply without begin');
  const step = def.steps[s.step] as StepDef;
  const backoff = () => Math.round(backoffDelayMs({ baseMs: def.retry.baseMs, capMs: def.retry.capMs, equalJitter: true }, s.attempts, random));

  if (s.status === 'RUNNING') {
    if (outcome.type === 'ok') {
      const n = s.step + 1;
      if (n >= def.steps.length) return { state: { ...s, status: 'COMPLETED', step: n - 1, attempts: 0, lastError: null }, delayMs: 0 };
      return { state: { ...s, step: n, attempts: 0, lastError: null }, delayMs: 0 };
    }
    if (step.kind === 'retriable') {
      // Past the pivot there is no going back: retry, and past the bound ask an operator.
      if (outcome.type === 'business' || s.attempts >= def.retry.maxCompensationAttempts) {
        return { state: { ...s, status: 'NEEDS_ATTENTION', resume: 'RUNNING', lastError: outcome.error }, delayMs: 0 };
      }
      return { state: { ...s, lastError: outcome.error }, delayMs: backoff() };
    }
    if (outcome.type === 'business') {
      // Refused: this attempt did nothing. Earlier attempts of the step ended unknown (timeouts,
      // crashes), so when there were any, the step is undone too — compensations are safe on
      // actions that never applied.
      const from = s.attempts > 1 ? s.step : s.step - 1;
      return compensateFrom(def, s, from, { step: step.name, kind: 'business', reason: outcome.error });
    }
    if (s.attempts < def.retry.maxAttempts) return { state: { ...s, lastError: outcome.error }, delayMs: backoff() };
    // Unknown outcome: the step may have applied, so it is undone too.
    return compensateFrom(def, s, s.step, { step: step.name, kind: 'exhausted', reason: outcome.error });
  }

  // COMPENSATING
  if (outcome.type === 'ok') {
    const i = nextCompensable(def, s.step - 1);
    if (i < 0) return { state: { ...s, status: 'COMPENSATED', step: 0, attempts: 0, lastError: null }, delayMs: 0 };
    return { state: { ...s, step: i, attempts: 0, lastError: null }, delayMs: 0 };
  }
  if (s.attempts >= def.retry.maxCompensationAttempts) {
    return { state: { ...s, status: 'NEEDS_ATTENTION', resume: 'COMPENSATING', lastError: outcome.error }, delayMs: 0 };
  }
  return { state: { ...s, lastError: outcome.error }, delayMs: backoff() };
}

/** An operator's retry of a NEEDS_ATTENTION saga: resumes where it stopped, with fresh attempts. */
export function retry(s: SagaState): SagaState {
  invariant(s.status === 'NEEDS_ATTENTION' && s.resume !== null, `retry of a saga in ${s.status}`);
  return { ...s, status: s.resume, resume: null, attempts: 0 };
}
