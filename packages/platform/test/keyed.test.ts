import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Store } from '../src/store/store.js';
import { dbInt, keyedTx } from '../src/store/keyed.js';

/** A store whose transactions fail with `errors` in turn, then run. */
function fakeStore(errors: unknown[]): { store: Store<unknown>; runs: () => number } {
  let runs = 0;
  const store = {
    async tx<T>(fn: (trx: never) => Promise<T>): Promise<T> {
      runs++;
      const err = errors.shift();
      if (err) throw err;
      return fn(undefined as never);
    },
  } as unknown as Store<unknown>;
  return { store, runs: () => runs };
}

test('a keyed transaction that loses an insert race runs once more and sees the winner', async () => {
  const { store, runs } = fakeStore([Object.assign(new Error('duplicate key'), { code: '23505' })]);
  assert.equal(await keyedTx(store, async () => 'replay'), 'replay');
  assert.equal(runs(), 2);
});

test('a keyed transaction does not retry other errors, nor a second unique violation', async () => {
  const other = fakeStore([new Error('disk full')]);
  await assert.rejects(keyedTx(other.store, async () => 1), /disk full/);
  assert.equal(other.runs(), 1);
  const twice = fakeStore([{ code: 'SQLITE_CONSTRAINT_PRIMARYKEY' }, { code: 'SQLITE_CONSTRAINT_PRIMARYKEY' }]);
  await assert.rejects(keyedTx(twice.store, async () => 1));
  assert.equal(twice.runs(), 2);
});

test('database integers arrive as numbers whatever the engine returned', () => {
  assert.equal(dbInt(42, 'x'), 42);
  assert.equal(dbInt('1000000000000', 'x'), 1_000_000_000_000, 'PostgreSQL bigint');
  assert.equal(dbInt(-7n, 'x'), -7);
  assert.throws(() => dbInt('12.5', 'sum'), /sum: expected an integer/);
  assert.throws(() => dbInt(null, 'x'), /expected an integer/);
  assert.throws(() => dbInt('9007199254740993', 'x'), /expected an integer/, 'beyond the safe range');
});
