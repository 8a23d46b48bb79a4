/**
 * The saga runtime: persists and drives sagas whose decisions come from the pure machine in
 * core/saga. The saga row is created in the caller's transaction (with the business change that
 * starts it), updated before every step (so a crash counts the attempt) and after it (with
 * the result, and — for local steps — in the same transaction as the step's own writes).
 *
 * Every instance of a service runs sagas; ownership is a lease on the row. A restarted instance
 * (same instance id) resumes its sagas at once; sagas of an instance that does not come back
 * are taken over when their lease expires.
 */
import { saga as machine } from '@concord/core';
import type { CompiledQuery, Kysely } from 'kysely';
import type { Batcher } from '../batch/batch.js';
import { type CallOptions, type MeshClient, isTransientStatus } from '../mesh/client.js';
import type { Faults } from '../service-kit/faults.js';
import type { Logger } from '../service-kit/logger.js';
import { prepared } from '../store/prepared.js';
import { type Store, execute, rawSql } from '../store/store.js';
import { SpanKind, trace } from '@opentelemetry/api';
import type { Metrics } from '../telemetry/metrics.js';
import { SpanStatusCode, type Telemetry, type TraceContext, traceparentOf } from '../telemetry/tracing.js';
import type { SagaTables } from './schema.js';

type SagaState = machine.SagaState;
type Outcome = machine.Outcome;

/** A participant's refusal (no stock, no funds): not retried; the saga turns around. */
export class BusinessError extends Error {
  override name = 'BusinessError';
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export interface StepContext<D> {
  sagaId: string;
  /** Deterministic per saga, step and phase: send it as the participant's idempotency key. */
  key: string;
  attempt: number;
  data: D;
  failure: machine.SagaFailure | null;
  signal: AbortSignal;
  /** The step's trace context: pass it to the calls the step makes (null when tracing is off). */
  trace: TraceContext | null;
}

export interface StepHandlers<D> {
  kind: machine.StepKind;
  /** Work outside this database (a call to another service). */
  run?(ctx: StepContext<D>): Promise<Partial<D> | undefined | void>;
  /** Work in this database, committed together with the saga's progress. */
  local?(trx: Kysely<any>, ctx: StepContext<D>): Promise<Partial<D> | undefined | void>;
  undo?(ctx: StepContext<D>): Promise<void>;
  undoLocal?(trx: Kysely<any>, ctx: StepContext<D>): Promise<void>;
  timeoutMs?: number;
  /**
   * Once this step has succeeded (durably), the saga's outcome is decided and written where its
   * callers read it: `waitFor` resolves then, not when the steps after it end. Only on a
   * retriable step, after which nothing can be undone (compensatable steps come first).
   */
  settles?: boolean;
}

export interface SagaType<D> {
  type: string;
  steps: Array<{ name: string } & StepHandlers<D>>;
  retry: machine.RetryPolicy;
}

export interface SagaSummary {
  id: string;
  type: string;
  status: machine.SagaStatus;
  step: string;
  attempts: number;
  error: string | null;
  failure: machine.SagaFailure | null;
  createdAt: string;
  updatedAt: string;
}

export interface SagaEvent {
  step: string;
  phase: string;
  event: string;
  attempt: number;
  detail: string | null;
  at: string;
}

export interface RuntimeOptions {
  store: Store<any>;
  log: Logger;
  /** This instance's id: the lease owner. */
  owner: string;
  faults?: Faults;
  random?: () => number;
  now?: () => number;
  leaseMs?: number;
  recoverEveryMs?: number;
  maxActive?: number;
  defaultStepTimeoutMs?: number;
  telemetry?: Telemetry;
  metrics?: Metrics;
  /** Called after a saga reaches a terminal (or operator) state in this process. */
  onSettled?: (summary: { id: string; type: string; status: machine.SagaStatus }) => void;
}

const ACTIVE = ['RUNNING', 'COMPENSATING'] as const;
/** Sagas remembered as begun at creation until driven (past it the oldest are forgotten: an extra begin only counts one attempt more). */
const MAX_BEGUN_AT_CREATE = 10_000;
const FAILED = Symbol('failed');
const MAX_DETAIL_CHARS = 2000;
/** Sagas whose lease one statement renews at most (the ids are bound as parameters). */
const RENEW_CHUNK = 500;
/** MySQL's and MariaDB's "You have an error in your SQL syntax". */
const ER_PARSE_ERROR = 1064;

class LostOwnership extends Error {}

type SagaEventInput = Omit<SagaTables['saga_log'], 'saga_id' | 'at' | 'seq'>;

let lastSeq = 0;
/** Monotonic in this process (microseconds since the epoch, bumped on ties): orders a saga's log. */
function nextSeq(): number {
  lastSeq = Math.max(lastSeq + 1, Date.now() * 1000);
  return lastSeq;
}

function startedEvent(cmd: { name: string; phase: machine.Phase; attempt: number }): SagaEventInput {
  return { step: cmd.name, phase: cmd.phase, event: 'started', attempt: cmd.attempt, detail: null };
}

interface Registered {
  type: SagaType<any>;
  def: machine.SagaDef;
}

// Every order creates a saga and reads it back to drive it: prepared statements (store/prepared.ts).
type SagaDb = Kysely<SagaTables>;
const insertSaga = prepared<{ id: string; type: string; status: string; step: number; attempts: number; data: string; owner: string; leaseUntilMs: number; now: string }>(
  ['id', 'type', 'status', 'step', 'attempts', 'data', 'owner', 'leaseUntilMs', 'now'],
  (db: SagaDb, p) =>
    db.insertInto('sagas').values({
      id: p.id,
      type: p.type,
      status: p.status,
      step: p.step,
      attempts: p.attempts,
      failure: null,
      last_error: null,
      resume: null,
      data: p.data,
      owner: p.owner,
      lease_until_ms: p.leaseUntilMs,
      created_at: p.now,
      updated_at: p.now,
    }),
);
const sagaById = prepared<{ id: string }, SagaTables['sagas']>(['id'], (db: SagaDb, p) => db.selectFrom('sagas').selectAll().where('id', '=', p.id));

export class SagaRuntime {
  private readonly types = new Map<string, Registered>();
  private readonly active = new Map<string, Promise<void>>();
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly sleeping = new Set<{ timer: NodeJS.Timeout; wake: () => void }>();
  private closing = false;
  private readonly leaseMs: number;

  constructor(private readonly opts: RuntimeOptions) {
    this.leaseMs = opts.leaseMs ?? 30_000;
  }

  private get db(): Kysely<SagaTables> {
    return this.opts.store.db as Kysely<SagaTables>;
  }
  private now(): number {
    return this.opts.now ? this.opts.now() : Date.now();
  }
  private iso(): string {
    return new Date(this.now()).toISOString();
  }

  register<D>(type: SagaType<D>): void {
    const def: machine.SagaDef = {
      type: type.type,
      steps: type.steps.map((s) => ({ name: s.name, kind: s.kind, compensable: Boolean(s.undo || s.undoLocal) })),
      retry: type.retry,
    };
    machine.validateDef(def);
    for (const s of type.steps) {
      if (Boolean(s.run) === Boolean(s.local)) throw new Error(`saga ${type.type} step ${s.name}: give exactly one of run or local`);
      if (s.settles && s.kind !== 'retriable')
        throw new Error(`saga ${type.type} step ${s.name}: only a retriable step settles a saga (a compensatable one may still be undone)`);
    }
    this.types.set(type.type, { type, def });
  }

  /**
   * Creates a saga inside the caller's transaction. Call `start(id, traceCtx)` after the
   * commit. `traceCtx`: the request that starts it (else the active context); the saga keeps
   * it, so a saga resumed elsewhere continues the same trace.
   */
  async create(trx: Kysely<any>, type: string, id: string, data: unknown, traceCtx?: TraceContext | null): Promise<void> {
    const reg = this.types.get(type);
    if (!reg) throw new Error(`unknown saga type ${type}`);
    const now = this.iso();
    // The trace of the request that starts the saga, so a resumed saga continues it.
    const t = this.opts.telemetry;
    const parent = t?.enabled ? t.parentOf(traceCtx) : null;
    // Its traceparent alone: a resumed saga needs no more to continue it, and this row is written once per order.
    const traceparent = parent ? traceparentOf(parent) : null;
    let fields = (traceparent ? { ...(data as object), __trace: { traceparent } } : { ...(data as object) }) as Record<string, unknown>;
    const events: SagaEventInput[] = [{ step: '', phase: 'forward', event: 'created', attempt: 0, detail: null }];
    // Leading local steps run here, in the creating transaction (their writes are in this
    // database, so they commit with the saga either way), and the first other step is begun:
    // a new saga reaches its first call with no write of its own (two fewer per saga). A local
    // step that fails here is rolled back to its savepoint and left to the driver, which runs it
    // with its retries as usual.
    let state = machine.initialState();
    let begun = false;
    for (;;) {
      const cmd = machine.next(reg.def, id, state);
      if (cmd.type !== 'execute') break;
      const handlers = reg.type.steps[cmd.step] as StepHandlers<unknown>;
      const attemptState = machine.begin(state);
      if (cmd.phase !== 'forward' || !handlers.local) {
        state = attemptState;
        events.push(startedEvent(cmd));
        begun = true;
        break;
      }
      const patch = await this.prerun(trx, type, id, cmd, handlers, fields, parent);
      if (patch === FAILED) break;
      if (patch) fields = { ...fields, ...patch };
      events.push(startedEvent(cmd), { step: cmd.name, phase: cmd.phase, event: 'succeeded', attempt: cmd.attempt, detail: null });
      const next = machine.apply(reg.def, attemptState, { type: 'ok' }, this.opts.random ?? Math.random);
      state = next.state;
      if (next.delayMs > 0) break;
    }
    await insertSaga.run(trx, { id, type, status: state.status, step: state.step, attempts: state.attempts, data: JSON.stringify(fields), owner: this.opts.owner, leaseUntilMs: this.now() + this.leaseMs, now });
    await this.insertEvents(trx as Kysely<SagaTables>, id, events, now);
    if (begun) {
      // The driver's first pass must not begin it again (a recovery pass does: crashes count).
      // Bounded: the oldest flag goes first (its saga, if ever driven, counts one attempt more).
      if (this.begunAtCreate.size >= MAX_BEGUN_AT_CREATE) this.begunAtCreate.delete(this.begunAtCreate.values().next().value as string);
      this.begunAtCreate.add(id);
    }
  }

  /** Ids created here whose first step was begun with the creating write, until their first drive. */
  private readonly begunAtCreate = new Set<string>();

  /** A local step run in a saga's creating transaction, in a savepoint: its patch, or FAILED (rolled back). */
  private async prerun(
    trx: Kysely<any>,
    type: string,
    id: string,
    cmd: { name: string; phase: machine.Phase; attempt: number; key: string },
    handlers: StepHandlers<unknown>,
    data: Record<string, unknown>,
    traceCtx: TraceContext | null,
  ): Promise<Record<string, unknown> | undefined | typeof FAILED> {
    // No fault points here: this runs inside the request's transaction, so a crash injected
    // here loses the order with it rather than testing how a saga recovers.
    const { ctx, deadline } = this.stepContext(id, cmd, handlers, data, null, traceCtx);
    let outcome = { type: 'ok' } as Outcome;
    let patch: Record<string, unknown> | undefined | typeof FAILED;
    await this.inStepSpan(type, id, cmd, traceCtx, ctx, async () => {
      await rawSql(trx, 'savepoint concord_prerun');
      try {
        patch = ((await handlers.local?.(trx, ctx)) ?? undefined) as Record<string, unknown> | undefined;
        await rawSql(trx, 'release savepoint concord_prerun');
      } catch (err) {
        await rawSql(trx, 'rollback to savepoint concord_prerun');
        await rawSql(trx, 'release savepoint concord_prerun');
        outcome = toOutcome(err);
        patch = FAILED;
      }
    }, () => outcome).finally(() => deadline.clear());
    return patch;
  }

  /**
   * Drives a saga owned by this instance (no-op if it is already running here). `traceCtx`:
   * the trace to continue; without one the saga continues the trace it was created under.
   */
  start(id: string, traceCtx: TraceContext | null = null): void {
    if (this.closing || this.active.has(id)) return;
    const p = this.drive(id, traceCtx)
      .catch((err) => {
        if (!(err instanceof LostOwnership)) this.opts.log.error({ err, sagaId: id }, 'saga driver failed; the lease will hand it to a recovery pass');
      })
      .finally(() => {
        this.active.delete(id);
        this.wake(id);
      });
    this.active.set(id, p);
  }

  /**
   * Resolves true when the saga settled in this process within `ms`: it ended, or a step marked
   * `settles` succeeded (the steps after it go on).
   */
  waitFor(id: string, ms: number): Promise<boolean> {
    if (!this.active.has(id)) return Promise.resolve(false);
    return new Promise((resolve) => {
      let set = this.waiters.get(id);
      if (!set) {
        set = new Set();
        this.waiters.set(id, set);
      }
      const s = set;
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        s.delete(done);
        resolve(false);
      }, ms);
      s.add(done);
    });
  }

  private wake(id: string): void {
    const set = this.waiters.get(id);
    if (!set) return;
    this.waiters.delete(id);
    for (const w of set) w();
  }

  /** Starts lease renewal and the recovery loop (which also resumes this instance's own sagas at once). */
  startBackground(): void {
    const renew = setInterval(() => void this.renewLeases(), Math.max(100, Math.floor(this.leaseMs / 3)));
    const recover = setInterval(() => void this.recover(), this.opts.recoverEveryMs ?? 1000);
    renew.unref();
    recover.unref();
    this.timers.push(renew, recover);
    void this.recover();
  }

  /** The server refused SKIP LOCKED once: renewals use the plain update from then on. */
  private skipLockedRefused = false;

  /**
   * Pushes back the lease of every active saga this instance owns; resolves to how many. On
   * PostgreSQL and MySQL the rows a transaction holds at that moment (a group commit writing
   * those sagas' progress) are skipped, so the renewal never waits for a lock: one statement
   * locking all the rows in its own order, while a group commit held some of them and wanted
   * another, deadlocked, and PostgreSQL broke the cycle only after its deadlock_timeout (1 s),
   * stalling the group. A saga skipped is being written right then; the next renewal, a third
   * of a lease later, takes it. SQLite has one writer at a time: nothing to skip.
   */
  async renewLeases(): Promise<number> {
    const until = this.now() + this.leaseMs;
    try {
      if (this.opts.store.dialect !== 'sqlite' && !this.skipLockedRefused) {
        try {
          // READ COMMITTED: MySQL's default (REPEATABLE READ) would keep locks on every row and
          // gap the index scan passed, other owners' sagas and new sagas' inserts included.
          return await this.db
            .transaction()
            .setIsolationLevel('read committed')
            .execute(async (t) => {
              const ids = (await t.selectFrom('sagas').select('id').where('owner', '=', this.opts.owner).where('status', 'in', ACTIVE).forUpdate().skipLocked().execute()).map((r) => r.id);
              for (let i = 0; i < ids.length; i += RENEW_CHUNK) {
                await t.updateTable('sagas').set({ lease_until_ms: until }).where('id', 'in', ids.slice(i, i + RENEW_CHUNK)).execute();
              }
              return ids.length;
            });
        } catch (err) {
          // MySQL before 8.0 and MariaDB before 10.6 have no SKIP LOCKED (a syntax error): renew
          // as before, at the risk of the deadlocks above, rather than not at all.
          if ((err as { errno?: number }).errno !== ER_PARSE_ERROR) throw err;
          this.skipLockedRefused = true;
          this.opts.log.warn('this MySQL/MariaDB has no SKIP LOCKED (MySQL 8.0+, MariaDB 10.6+): saga leases are renewed with a plain update, which can deadlock with group commits');
        }
      }
      const r = await this.db.updateTable('sagas').set({ lease_until_ms: until }).where('owner', '=', this.opts.owner).where('status', 'in', ACTIVE).executeTakeFirst();
      return Number(r.numUpdatedRows);
    } catch (err) {
      this.opts.log.warn({ err }, 'saga lease renewal failed');
      return 0;
    }
  }

  /** Claims unfinished sagas: this instance's own, and any whose lease expired. */
  async recover(): Promise<number> {
    if (this.closing) return 0;
    const max = this.opts.maxActive ?? 5000;
    if (this.active.size >= max) return 0;
    let claimed = 0;
    try {
      const now = this.now();
      const rows = await this.db
        .selectFrom('sagas')
        .select(['id'])
        .where('status', 'in', ACTIVE)
        .where((eb) => eb.or([eb('lease_until_ms', '<', now), eb('owner', '=', this.opts.owner)]))
        .orderBy('updated_at')
        .limit(Math.min(200, max - this.active.size))
        .execute();
      for (const { id } of rows) {
        if (this.active.has(id)) continue;
        const r = await this.db
          .updateTable('sagas')
          .set({ owner: this.opts.owner, lease_until_ms: now + this.leaseMs })
          .where('id', '=', id)
          .where('status', 'in', ACTIVE)
          .where((eb) => eb.or([eb('lease_until_ms', '<', now), eb('owner', '=', this.opts.owner)]))
          .executeTakeFirst();
        if (Number(r.numUpdatedRows) === 1 && !this.active.has(id)) {
          claimed++;
          this.start(id);
        }
      }
      if (claimed > 0) this.opts.log.info({ claimed }, 'resumed unfinished sagas');
    } catch (err) {
      this.opts.log.warn({ err }, 'saga recovery pass failed');
    }
    return claimed;
  }

  private async drive(id: string, traceCtx: TraceContext | null): Promise<void> {
    const row = await sagaById.first(this.db, { id });
    if (!row) throw new Error(`saga ${id} not found`);
    const t = this.opts.telemetry;
    if (!t?.enabled) return this.loop(row, null);
    if (traceCtx && trace.getSpanContext(traceCtx)) return this.loop(row, traceCtx);
    // Resumed (recovery, a retry): continue the trace of the request that started it.
    const carrier = (JSON.parse(row.data) as { __trace?: Record<string, string> }).__trace;
    return this.loop(row, carrier ? t.extract(carrier) : null);
  }

  /** `traceCtx`: the trace the steps' spans join (null: untraced, or tracing off). */
  private async loop(row: SagaTables['sagas'], traceCtx: TraceContext | null): Promise<void> {
    const id = row.id;
    const reg = this.types.get(row.type);
    if (!reg) throw new Error(`saga ${id} has unknown type ${row.type}`);
    const tel = this.opts.telemetry;
    let state = toState(row);
    let data = JSON.parse(row.data) as Record<string, unknown>;
    const random = this.opts.random ?? Math.random;
    /** True when `state` already counts the attempt about to run (persisted with the last write). */
    // Only as created here: still this instance's, and its first step begun (a flag left by a
    // creation that rolled back can meet another row under a reused id).
    let begun = this.begunAtCreate.delete(id) && row.owner === this.opts.owner && row.attempts > 0;
    /** True when a step changed `data` since the last write (else the row's data stays as it is). */
    let dirty = false;
    const writeProgress = async (db: Kysely<SagaTables> | null, events: SagaEventInput[]) => {
      const changed = dirty;
      dirty = false;
      await this.write(db, id, state, data, events, changed);
    };

    /**
     * Records a step's outcome. When the next step can start at once, its attempt is counted
     * in the same write (one write per step instead of two).
     */
    const record = async (db: Kysely<SagaTables> | null, t: machine.Transition, event: SagaEventInput): Promise<void> => {
      const nextCmd = machine.next(reg.def, id, t.state);
      if (nextCmd.type === 'execute' && t.delayMs === 0 && !this.closing) {
        state = machine.begin(t.state);
        await writeProgress(db, [event, startedEvent(nextCmd)]);
        begun = true;
      } else {
        state = t.state;
        await writeProgress(db, [event]);
        begun = false;
      }
    };

    for (;;) {
      const next = machine.next(reg.def, id, state);
      if (next.type !== 'execute') {
        this.opts.metrics?.sagas.inc({ type: row.type, status: state.status });
        this.opts.onSettled?.({ id, type: row.type, status: state.status });
        return;
      }
      if (this.closing) return;
      // A step begun with the last write is already counted in `state`: this is attempt
      // `attempts`, not `attempts + 1` (what its "started" event said).
      const cmd = begun ? { ...next, attempt: state.attempts } : next;
      const handlers = reg.type.steps[cmd.step]!;
      const compensating = cmd.phase === 'compensate';
      const point = `${compensating ? 'undo:' : ''}${cmd.name}`;
      if (!begun) {
        state = machine.begin(state);
        await writeProgress(null, [startedEvent(cmd)]);
        begun = true;
      }
      this.opts.faults?.point(`before:${point}`);

      const { ctx, deadline } = this.stepContext(id, cmd, handlers, data, state.failure, traceCtx);
      const attemptState = state;
      // Assigned inside runStep (a closure), hence the widening casts.
      let outcome = { type: 'ok' } as Outcome;
      let recorded = false as boolean;
      const runStep = async (): Promise<void> => {
        if (compensating ? handlers.undoLocal : handlers.local) {
          try {
            // Group commit: the step's own writes and the saga's progress, in one savepoint of a
            // transaction shared with the other sagas stepping in this tick.
            await this.opts.store.group(async (trx) => {
              const patch = compensating ? await handlers.undoLocal!(trx, ctx) : await handlers.local!(trx, ctx);
              if (patch) {
                data = { ...data, ...patch };
                dirty = true;
              }
              const t = machine.apply(reg.def, attemptState, { type: 'ok' }, random);
              await record(trx as Kysely<SagaTables>, t, { step: cmd.name, phase: cmd.phase, event: 'succeeded', attempt: cmd.attempt, detail: null });
            }, ctx.trace);
            recorded = true;
          } catch (err) {
            if (err instanceof LostOwnership) throw err;
            // The transaction rolled back: nothing of `record` happened.
            state = attemptState;
            begun = true;
            outcome = toOutcome(err);
          }
          return;
        }
        try {
          const patch = await deadline.race(compensating ? handlers.undo!(ctx) : handlers.run!(ctx));
          if (patch) {
            data = { ...data, ...patch };
            dirty = true;
          }
        } catch (err) {
          outcome = toOutcome(err);
        }
      };
      await this.inStepSpan(row.type, id, cmd, traceCtx, ctx, runStep, () => outcome).finally(() => deadline.clear());
      this.opts.faults?.point(`after:${point}`);

      let delayMs = 0;
      if (!recorded) {
        const t = machine.apply(reg.def, attemptState, outcome, random);
        const event = outcome.type === 'ok' ? 'succeeded' : outcome.type === 'business' ? 'refused' : 'failed';
        await record(null, t, { step: cmd.name, phase: cmd.phase, event, attempt: cmd.attempt, detail: outcome.type === 'ok' ? null : outcome.error });
        delayMs = t.delayMs;
        if (outcome.type !== 'ok') this.opts.log.debug({ sagaId: id, step: cmd.name, phase: cmd.phase, outcome }, 'saga step did not succeed');
      }
      // A settling step's success is committed by now: its waiters need not wait for the rest.
      if (handlers.settles && !compensating && outcome.type === 'ok') this.wake(id);
      if (state.status === 'NEEDS_ATTENTION') this.opts.log.warn({ sagaId: id, type: row.type, step: cmd.name, error: state.lastError }, 'saga needs attention');
      if (delayMs > 0) await this.sleep(delayMs);
    }
  }

  /**
   * What a step attempt is given, and its deadline: the timer is armed on first use (a local step
   * never asks) and must be cleared when the attempt ends — AbortSignal.timeout would keep a timer
   * per step alive for its whole timeout.
   */
  private stepContext<D>(
    id: string,
    cmd: { name: string; attempt: number; key: string },
    handlers: StepHandlers<D>,
    data: D,
    failure: machine.SagaFailure | null,
    traceCtx: TraceContext | null,
  ): { ctx: StepContext<D>; deadline: StepDeadline } {
    const deadline = new StepDeadline(handlers.timeoutMs ?? this.opts.defaultStepTimeoutMs ?? 5000, cmd.name);
    const ctx: StepContext<D> = {
      sagaId: id,
      key: cmd.key,
      attempt: cmd.attempt,
      data,
      failure,
      get signal() {
        return deadline.signal();
      },
      trace: traceCtx,
    };
    return { ctx, deadline };
  }

  /** Runs a step attempt in its span (when traced), giving the step the span's context. */
  private async inStepSpan(type: string, id: string, cmd: { name: string; phase: machine.Phase; attempt: number }, traceCtx: TraceContext | null, ctx: StepContext<any>, run: () => Promise<void>, outcome: () => Outcome): Promise<void> {
    const tel = this.opts.telemetry;
    if (!tel?.enabled || !traceCtx || !trace.getSpanContext(traceCtx)) return run();
    await tel.inSpan(
      `saga ${type} ${cmd.phase === 'compensate' ? 'undo ' : ''}${cmd.name}`,
      SpanKind.INTERNAL,
      async (span, stepCtx) => {
        ctx.trace = stepCtx;
        await run();
        const o = outcome();
        span.setAttribute('saga.id', id);
        span.setAttribute('saga.attempt', cmd.attempt);
        span.setAttribute('saga.outcome', o.type);
        if (o.type !== 'ok') span.setStatus({ code: SpanStatusCode.ERROR, message: o.error.slice(0, 200) });
      },
      {},
      traceCtx,
    );
  }

  /**
   * Writes a saga's progress: inside `db` when a local step's transaction is open, else by group
   * commit with the other sagas progressing in this tick (one transaction for all of them).
   */
  private write(db: Kysely<SagaTables> | null, id: string, s: SagaState, data: unknown, events: SagaEventInput[], dataChanged = true): Promise<void> {
    if (db) return this.persist(db, id, s, data, events, dataChanged);
    return this.opts.store.group((trx) => this.persist(trx as Kysely<SagaTables>, id, s, data, events, dataChanged));
  }

  /** SQL text by statement shape, compiled once by Kysely (so it is right for the dialect) and reused. */
  private readonly shapes = new Map<string, string>();

  private shape(key: string, compile: () => CompiledQuery): string {
    let text = this.shapes.get(key);
    if (text === undefined) {
      text = compile().sql;
      this.shapes.set(key, text);
    }
    return text;
  }

  /**
   * Persists progress. `data` is written only when a step changed it. The hot statements skip
   * Kysely's builder after their first use: their SQL text is cached per shape, and the values
   * bound in the same order the builder bound them.
   */
  private async persist(
    db: Kysely<SagaTables>,
    id: string,
    s: SagaState,
    data: unknown,
    events: SagaEventInput[],
    dataChanged = true,
  ): Promise<void> {
    const at = this.iso();
    const values: Record<string, unknown> = {
      status: s.status,
      step: s.step,
      attempts: s.attempts,
      failure: s.failure ? JSON.stringify(s.failure) : null,
      last_error: s.lastError ? s.lastError.slice(0, MAX_DETAIL_CHARS) : null,
      resume: s.resume,
      ...(dataChanged ? { data: JSON.stringify(data) } : {}),
      // The lease is renewed by renewLeases(), not on every step: fewer index writes.
      updated_at: at,
    };
    const updateSql = this.shape(dataChanged ? 'update+data' : 'update', () =>
      db.updateTable('sagas').set(values).where('id', '=', id).where('owner', '=', this.opts.owner).compile(),
    );
    const r = await execute(db, updateSql, [...Object.values(values), id, this.opts.owner]);
    if (Number(r.numAffectedRows ?? 0) !== 1) throw new LostOwnership(`saga ${id} is owned by another instance now`);
    await this.insertEvents(db, id, events, at);
  }

  /** Appends events to a saga's log in one statement (its SQL text cached per event count). */
  private async insertEvents(db: Kysely<SagaTables>, id: string, events: SagaEventInput[], at: string): Promise<void> {
    const rows = events.map((e) => ({ saga_id: id, seq: nextSeq(), step: e.step, phase: e.phase, event: e.event, attempt: e.attempt, detail: e.detail ? e.detail.slice(0, MAX_DETAIL_CHARS) : null, at }));
    const insertSql = this.shape(`events×${rows.length}`, () => db.insertInto('saga_log').values(rows).compile());
    await execute(db, insertSql, rows.flatMap((row) => Object.values(row)));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const entry = {
        timer: setTimeout(() => {
          this.sleeping.delete(entry);
          resolve();
        }, ms),
        wake: () => resolve(),
      };
      this.sleeping.add(entry);
    });
  }

  /** An operator's retry of a NEEDS_ATTENTION saga. Returns false when it is not in that state. */
  async retry(id: string): Promise<boolean> {
    const now = this.now();
    const ok = await this.opts.store.tx(async (trx) => {
      const t = trx as Kysely<SagaTables>;
      const row = await t.selectFrom('sagas').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row || row.status !== 'NEEDS_ATTENTION') return false;
      const s = machine.retry(toState(row));
      await t
        .updateTable('sagas')
        .set({ status: s.status, attempts: 0, resume: null, owner: this.opts.owner, lease_until_ms: now + this.leaseMs, updated_at: this.iso() })
        .where('id', '=', id)
        .execute();
      await t.insertInto('saga_log').values({ saga_id: id, seq: nextSeq(), step: '', phase: '', event: 'operator-retry', attempt: 0, detail: null, at: this.iso() }).execute();
      return true;
    });
    if (ok) this.start(id);
    return ok;
  }

  async list(opts: { status?: string; type?: string; limit?: number } = {}): Promise<SagaSummary[]> {
    let q = this.db.selectFrom('sagas').selectAll().orderBy('updated_at', 'desc').limit(opts.limit ?? 100);
    if (opts.status) q = q.where('status', '=', opts.status);
    if (opts.type) q = q.where('type', '=', opts.type);
    return (await q.execute()).map((r) => this.summary(r));
  }

  async get(id: string): Promise<(SagaSummary & { data: unknown; events: SagaEvent[] }) | null> {
    const row = await this.db.selectFrom('sagas').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) return null;
    const events = await this.db.selectFrom('saga_log').select(['step', 'phase', 'event', 'attempt', 'detail', 'at']).where('saga_id', '=', id).orderBy('seq').limit(1000).execute();
    return { ...this.summary(row), data: JSON.parse(row.data), events };
  }

  async counts(): Promise<Record<string, number>> {
    const rows = await this.db.selectFrom('sagas').select(['status', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('status').execute();
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  }

  private summary(r: SagaTables['sagas']): SagaSummary {
    const reg = this.types.get(r.type);
    return {
      id: r.id,
      type: r.type,
      status: r.status as machine.SagaStatus,
      step: reg?.def.steps[r.step]?.name ?? String(r.step),
      attempts: r.attempts,
      error: r.last_error,
      failure: r.failure ? (JSON.parse(r.failure) as machine.SagaFailure) : null,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    };
  }

  get activeCount(): number {
    return this.active.size;
  }

  /**
   * Stops taking new steps, lets in-flight steps finish (up to `graceMs`), then gives up the
   * leases so another instance can continue at once.
   */
  async close(graceMs = 5000): Promise<void> {
    this.closing = true;
    for (const t of this.timers) clearInterval(t);
    for (const s of this.sleeping) {
      clearTimeout(s.timer);
      s.wake();
    }
    await Promise.race([Promise.allSettled([...this.active.values()]), new Promise((r) => setTimeout(r, graceMs).unref())]);
    try {
      await this.db.updateTable('sagas').set({ lease_until_ms: 0 }).where('owner', '=', this.opts.owner).where('status', 'in', ACTIVE).execute();
    } catch (err) {
      this.opts.log.warn({ err }, 'could not release saga leases');
    }
  }
}

function toState(r: SagaTables['sagas']): SagaState {
  return {
    status: r.status as machine.SagaStatus,
    step: r.step,
    attempts: r.attempts,
    failure: r.failure ? (JSON.parse(r.failure) as machine.SagaFailure) : null,
    lastError: r.last_error,
    resume: r.resume as SagaState['resume'],
  };
}

function toOutcome(err: unknown): Outcome {
  if (err instanceof BusinessError) return { type: 'business', error: `${err.reason}: ${err.message}` };
  return { type: 'transient', error: err instanceof Error ? err.message : String(err) };
}

/**
 * A step's timeout: one timer, armed when the step first needs it; `race` rejects a step's
 * promise when it fires, and `signal()` (an AbortSignal for a handler that asks) is made only
 * on first use. `clear` stops the timer.
 */
class StepDeadline {
  private timer: NodeJS.Timeout | null = null;
  private controller: AbortController | null = null;
  private rejectRace: ((err: Error) => void) | null = null;
  private expired: Error | null = null;

  constructor(
    private readonly timeoutMs: number,
    private readonly step: string,
  ) {}

  private arm(): void {
    if (this.timer || this.expired) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.expired = new Error(`step ${this.step} timed out after ${this.timeoutMs} ms`);
      this.controller?.abort(this.expired);
      this.rejectRace?.(this.expired);
    }, this.timeoutMs);
    this.timer.unref();
  }

  signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.expired) this.controller.abort(this.expired);
      else this.arm();
    }
    return this.controller.signal;
  }

  /** `p`, or a rejection when the timeout passes first. */
  race<T>(p: Promise<T>): Promise<T> {
    p.catch(() => {}); // a step that fails after its timeout must not become an unhandled rejection
    if (this.expired) return Promise.reject(this.expired);
    this.arm();
    return Promise.race([
      p,
      new Promise<never>((_, reject) => {
        this.rejectRace = reject;
      }),
    ]);
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.rejectRace = null;
  }
}

/**
 * A saga step's answer from another service: 2xx returns the body; a 4xx refusal becomes a
 * BusinessError carrying the problem's slug; 5xx, 408 and 429 are transient.
 */
export function stepResult<T>(service: string, status: number, body: unknown): T {
  if (status >= 200 && status < 300) return body as T;
  const problem = (typeof body === 'object' && body !== null ? body : {}) as { type?: string; detail?: string };
  const detail = `${service} answered ${status}${problem.detail ? `: ${problem.detail}` : ''}`;
  if (isTransientStatus(status)) throw new Error(detail);
  const slug = typeof problem.type === 'string' ? (problem.type.split('/').pop() ?? 'refused') : 'refused';
  throw new BusinessError(slug, detail);
}

/** A saga step's call to another service (no answer at all is transient too). */
export async function stepCall<T = unknown>(mesh: { request: MeshClient['request'] }, service: string, call: CallOptions): Promise<T> {
  const r = await mesh.request<T>(service, call);
  return stepResult<T>(service, r.status, r.body);
}

/** A saga step's call through a Batcher (coalesced with other sagas' calls of the same kind). */
export async function batchedStepCall<T = unknown>(batcher: Batcher<unknown>, service: string, item: unknown, traceCtx: TraceContext | null = null): Promise<T> {
  const r = await batcher.call(item, traceCtx);
  return stepResult<T>(service, r.status, r.body);
}
