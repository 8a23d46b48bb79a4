import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toProblem } from '../src/service-kit/server.js';
import { isTransactionConflict } from '../src/store/store.js';

test('a deadlock or serialization failure is a transaction conflict, answered 503 to be retried; other database errors are not', () => {
  const mysqlDeadlock = Object.assign(new Error('Deadlock found when trying to get lock; try restarting transaction'), { code: 'ER_LOCK_DEADLOCK', errno: 1213 });
  const pgDeadlock = Object.assign(new Error('deadlock detected'), { code: '40P01' });
  const pgSerialization = Object.assign(new Error('could not serialize access due to concurrent update'), { code: '40001' });
  for (const err of [mysqlDeadlock, pgDeadlock, pgSerialization]) {
    assert.equal(isTransactionConflict(err), true, err.message);
    const p = toProblem(err);
    assert.equal(p.status, 503, err.message);
    assert.match(p.type, /transaction-conflict$/);
  }
  const unique = Object.assign(new Error('duplicate key value violates unique constraint'), { code: '23505' });
  const syntax = Object.assign(new Error('You have an error in your SQL syntax'), { code: 'ER_PARSE_ERROR', errno: 1064 });
  for (const err of [unique, syntax, new Error('boom')]) {
    assert.equal(isTransactionConflict(err), false, err.message);
    assert.equal(toProblem(err).status, 500, err.message);
  }
});
