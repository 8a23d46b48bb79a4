/**
 * The reservation state machine, pure: given a command, what is stored and the time, it says
 * which transitions to apply and what to answer. The shell applies them in one transaction.
 *
 *   (none) ──reserve──▶ RESERVED ──confirm──▶ CONFIRMED ──restock──▶ RESTOCKED
 *                          │  └────release──▶ RELEASED
 *                          └──(expires)─────▶ EXPIRED
 *   (none) ──release──▶ RELEASED (a tombstone without items: a later reserve of that id is refused)
 *
 * A RESERVED reservation past its deadline is EXPIRED for every command, whether or not the
 * sweeper has reached it yet: the command first applies the expiry, then answers as for
 * EXPIRED (which behaves like RELEASED). So the outcome never depends on the sweeper's timing.
 * Every command is idempotent: repeating it answers the same and moves nothing.
 */

export const STATUSES = ['RESERVED', 'CONFIRMED', 'RELEASED', 'EXPIRED', 'RESTOCKED'] as const;
export type ReservationStatus = (typeof STATUSES)[number];

export type Command = 'reserve' | 'confirm' | 'release' | 'restock' | 'expire';

/** Where the units of every item of the reservation move. */
export type Move = 'available->reserved' | 'reserved->sold' | 'reserved->available' | 'sold->available';

export interface Transition {
  /** null: the reservation does not exist yet and is created with status `to`. */
  from: ReservationStatus | null;
  to: ReservationStatus;
  /** null for a tombstone (no items). */
  move: Move | null;
}

export type Outcome =
  | { ok: true; status: ReservationStatus; created: boolean }
  | {
      ok: false;
      httpStatus: 404 | 409;
      slug: 'unknown-reservation' | 'reservation-released' | 'reservation-confirmed' | 'reservation-not-confirmed';
      detail: string;
    };

export interface Plan {
  transitions: Transition[];
  outcome: Outcome;
}

export interface Stored {
  status: ReservationStatus;
  /** null for tombstones. */
  expiresAtMs: number | null;
}

export function isStatus(s: string): s is ReservationStatus {
  return (STATUSES as readonly string[]).includes(s);
}

export function isOverdue(r: Stored, nowMs: number): boolean {
  return r.status === 'RESERVED' && r.expiresAtMs !== null && nowMs >= r.expiresAtMs;
}

const ok = (status: ReservationStatus, created = false): Outcome => ({ ok: true, status, created });

export function plan(cmd: Command, id: string, stored: Stored | null, nowMs: number): Plan {
  if (stored === null) {
    switch (cmd) {
      case 'reserve':
        return { transitions: [{ from: null, to: 'RESERVED', move: 'available->reserved' }], outcome: ok('RESERVED', true) };
      case 'release':
        return { transitions: [{ from: null, to: 'RELEASED', move: null }], outcome: ok('RELEASED', true) };
      default:
        return { transitions: [], outcome: { ok: false, httpStatus: 404, slug: 'unknown-reservation', detail: `no reservation ${id}` } };
    }
  }
  const transitions: Transition[] = [];
  let status = stored.status;
  if (isOverdue(stored, nowMs)) {
    transitions.push({ from: 'RESERVED', to: 'EXPIRED', move: 'reserved->available' });
    status = 'EXPIRED';
  }
  const released = status === 'RELEASED' || status === 'EXPIRED';
  const refuse = (httpStatus: 409, slug: 'reservation-released' | 'reservation-confirmed' | 'reservation-not-confirmed', detail: string): Plan => ({
    transitions,
    outcome: { ok: false, httpStatus, slug, detail },
  });
  switch (cmd) {
    case 'reserve':
      // A replay: answer with what is stored, unless it was undone before.
      if (released) return refuse(409, 'reservation-released', `reservation ${id} was ${status.toLowerCase()}; use a new reservation id`);
      return { transitions, outcome: ok(status) };
    case 'confirm':
      if (released) return refuse(409, 'reservation-released', `reservation ${id} was ${status.toLowerCase()} and cannot be confirmed`);
      if (status === 'RESERVED') transitions.push({ from: 'RESERVED', to: 'CONFIRMED', move: 'reserved->sold' });
      // RESTOCKED: it was confirmed and has since been restocked; answer with what it is now.
      return { transitions, outcome: ok(status === 'RESERVED' ? 'CONFIRMED' : status) };
    case 'release':
      if (status === 'CONFIRMED') return refuse(409, 'reservation-confirmed', `reservation ${id} is confirmed; restock it instead`);
      if (status === 'RESERVED') transitions.push({ from: 'RESERVED', to: 'RELEASED', move: 'reserved->available' });
      return { transitions, outcome: ok(status === 'RESERVED' ? 'RELEASED' : status) };
    case 'restock':
      if (status === 'RESTOCKED') return { transitions, outcome: ok(status) };
      if (status !== 'CONFIRMED')
        return refuse(
          409,
          'reservation-not-confirmed',
          `reservation ${id} is ${status.toLowerCase()}, not confirmed; only confirmed reservations are restocked`,
        );
      transitions.push({ from: 'CONFIRMED', to: 'RESTOCKED', move: 'sold->available' });
      return { transitions, outcome: ok('RESTOCKED') };
    case 'expire':
      // The sweeper: the overdue check above did the work, if there was any.
      return { transitions, outcome: ok(status) };
  }
}
