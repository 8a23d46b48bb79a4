/**
 * The points shell over a real SQLite file: entries apply once, balances follow the ledger.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { HttpError, Store, createLogger } from '@concord/platform';
import type { PointsDb } from '../src/db.js';
import { migrations } from '../src/migrations.js';
import { Points } from '../src/points.js';

const log = createLogger({ service: 'points-test', instance: 'test', version: 'v1' }, 'silent');

describe('points over SQLite', () => {
  let dir: string;
  let store: Store<PointsDb>;
  let points: Points;
  let n = 0;
  let user: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'concord-points-'));
    store = await Store.open<PointsDb>({ url: `sqlite:${join(dir, 'points.db')}`, log });
    await store.migrate(migrations);
    points = new Points(store);
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    user = `u-${++n}`;
  });

  test('an award applies once; replays (also concurrent) answer the balance without adding again', async () => {
    const req = { kind: 'AWARD' as const, key: `${user}:award`, userId: user, orderId: 'o-1', points: 120 };
    const results = await Promise.all(Array.from({ length: 10 }, () => points.record(req)));
    assert.equal(results.filter((r) => r.created).length, 1);
    for (const r of results) assert.deepEqual(r.view, { key: req.key, userId: user, points: 120 });
    assert.deepEqual(await points.balance(user), { userId: user, points: 120 });
  });

  test('revoking exactly what was awarded always succeeds, also when the revoke arrives first', async () => {
    const revoke = await points.record({ kind: 'REVOKE', key: `${user}:revoke`, userId: user, orderId: 'o-1', points: 70 });
    assert.deepEqual(revoke.view.points, -70, 'the balance dips below zero until the award arrives');
    await points.record({ kind: 'AWARD', key: `${user}:award`, userId: user, orderId: 'o-1', points: 70 });
    assert.deepEqual(await points.balance(user), { userId: user, points: 0 });
  });

  test('a key reused with other parameters is refused and changes nothing', async () => {
    await points.record({ kind: 'AWARD', key: `${user}:k`, userId: user, orderId: 'o-1', points: 5 });
    const err = await points.record({ kind: 'REVOKE', key: `${user}:k`, userId: user, orderId: 'o-1', points: 5 }).catch((e: unknown) => e);
    assert.ok(err instanceof HttpError);
    assert.equal(err.status, 409);
    assert.equal(err.problem.type, 'https://concord.dev/problems/key-mismatch');
    assert.deepEqual(err.problem.fields, ['kind', 'points']);
    assert.deepEqual(await points.balance(user), { userId: user, points: 5 });
  });

  test('an unknown user has 0 points; the total is the sum of every balance and of every entry', async () => {
    assert.deepEqual(await points.balance(`${user}-nobody`), { userId: `${user}-nobody`, points: 0 });
    const before = await points.totalPoints();
    await points.record({ kind: 'AWARD', key: `${user}:a1`, userId: user, orderId: 'o-1', points: 30 });
    await points.record({ kind: 'AWARD', key: `${user}:a2`, userId: `${user}-b`, orderId: 'o-2', points: 12 });
    await points.record({ kind: 'REVOKE', key: `${user}:r1`, userId: user, orderId: 'o-1', points: 30 });
    assert.equal(await points.totalPoints(), before + 12);
    const ledger = await store.db
      .selectFrom('ledger')
      .select((eb) => eb.fn.sum<number>('delta').as('s'))
      .executeTakeFirstOrThrow();
    assert.equal(Number(ledger.s), await points.totalPoints());
  });
});
