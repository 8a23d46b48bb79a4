/**
 * The payment shell over a real SQLite file: what each operation writes, and what it must not.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { HttpError, Store, createLogger } from '@concord/platform';
import { sql } from 'kysely';
import type { PaymentDb } from '../src/db.js';
import { moneyConserved } from '../src/domain/charges.js';
import { INITIAL_BALANCE_CENTS } from '../src/domain/limits.js';
import { migrations } from '../src/migrations.js';
import { Payments } from '../src/payments.js';

const log = createLogger({ service: 'payment-test', instance: 'test', version: 'v1' }, 'silent');

async function rejectsWith(p: Promise<unknown>, status: number, slug: string): Promise<HttpError> {
  const err = await p.then(
    () => assert.fail(`expected ${slug}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof HttpError, String(err));
  assert.equal(err.status, status);
  assert.equal(err.problem.type, `https://concord.dev/problems/${slug}`);
  return err;
}

describe('payments over SQLite', () => {
  let dir: string;
  let store: Store<PaymentDb>;
  let payments: Payments;
  let n = 0;
  let user: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'concord-payment-'));
    store = await Store.open<PaymentDb>({ url: `sqlite:${join(dir, 'payment.db')}`, log });
    await store.migrate(migrations);
    payments = new Payments(store);
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    user = `u-${++n}`;
  });

  async function snapshot() {
    const db = store.db;
    return {
      summary: await payments.summary(),
      charges: await db.selectFrom('charges').selectAll().orderBy('id').execute(),
      refunds: await db.selectFrom('refunds').selectAll().orderBy('id').execute(),
      wallets: await db.selectFrom('wallets').selectAll().orderBy('user_id').execute(),
    };
  }

  test('a wallet is created once with 10000.00; later calls find it', async () => {
    const first = await payments.ensureWallet(user);
    assert.deepEqual(first, { wallet: { userId: user, balance: INITIAL_BALANCE_CENTS }, created: true });
    const again = await payments.ensureWallet(user);
    assert.deepEqual(again, { wallet: { userId: user, balance: INITIAL_BALANCE_CENTS }, created: false });
    const concurrent = await Promise.all(Array.from({ length: 10 }, () => payments.ensureWallet(`${user}-c`)));
    assert.equal(concurrent.filter((r) => r.created).length, 1);
  });

  test('walletOf creates the wallet of a user seen for the first time, and only reads afterwards', async () => {
    assert.equal(await payments.findWallet(user), undefined);
    assert.deepEqual(await payments.walletOf(user), { userId: user, balance: INITIAL_BALANCE_CENTS });
    assert.deepEqual(await payments.findWallet(user), { userId: user, balance: INITIAL_BALANCE_CENTS });
  });

  test('a charge debits once; its replay answers the same without debiting again', async () => {
    const req = { chargeId: `${user}-c1`, userId: user, orderId: `${user}-o1`, amount: 12_345 };
    const first = await payments.charge(req);
    assert.deepEqual(first, {
      created: true,
      view: { chargeId: req.chargeId, status: 'CHARGED', amount: 12_345, refunded: 0, balance: INITIAL_BALANCE_CENTS - 12_345 },
    });
    const replay = await payments.charge(req);
    assert.deepEqual(replay, { ...first, created: false });
    assert.equal((await payments.findWallet(user))?.balance, INITIAL_BALANCE_CENTS - 12_345);
  });

  test('a charge creates the wallet of a user it has never seen', async () => {
    const r = await payments.charge({ chargeId: `${user}-c`, userId: user, orderId: 'o', amount: 100 });
    assert.equal(r.view.balance, INITIAL_BALANCE_CENTS - 100);
    assert.equal((await store.db.selectFrom('wallets').selectAll().where('user_id', '=', user).execute()).length, 1);
  });

  test('insufficient funds is refused with balance and amount, and writes nothing (not even the wallet)', async () => {
    const before = await snapshot();
    const err = await rejectsWith(
      payments.charge({ chargeId: `${user}-big`, userId: user, orderId: 'o', amount: INITIAL_BALANCE_CENTS + 1 }),
      409,
      'insufficient-funds',
    );
    assert.equal(err.problem.balance, INITIAL_BALANCE_CENTS);
    assert.equal(err.problem.amount, INITIAL_BALANCE_CENTS + 1);
    assert.deepEqual(await snapshot(), before);
  });

  test('the same charge id with different parameters is refused and changes nothing', async () => {
    const req = { chargeId: `${user}-c`, userId: user, orderId: 'o', amount: 500 };
    await payments.charge(req);
    const before = await snapshot();
    const err = await rejectsWith(payments.charge({ ...req, amount: 501 }), 409, 'charge-mismatch');
    assert.deepEqual(err.problem.fields, ['amount']);
    assert.deepEqual(await snapshot(), before);
  });

  test('refunds: partial, then the rest by default, never above the charge; each refund id applies once', async () => {
    const chargeId = `${user}-c`;
    await payments.charge({ chargeId, userId: user, orderId: 'o', amount: 1000 });
    const part = await payments.refund({ chargeId, refundId: `${user}-r1`, amount: 300 });
    assert.deepEqual(part, { chargeId, status: 'CHARGED', amount: 1000, refunded: 300, balance: INITIAL_BALANCE_CENTS - 700 });
    assert.deepEqual(await payments.refund({ chargeId, refundId: `${user}-r1`, amount: 300 }), part, 'replay answers the same');
    const tooMuch = await rejectsWith(payments.refund({ chargeId, refundId: `${user}-r2`, amount: 701 }), 409, 'refund-exceeds-charge');
    assert.equal(tooMuch.problem.refundable, 700);
    const rest = await payments.refund({ chargeId, refundId: `${user}-r3` });
    assert.deepEqual(rest, { chargeId, status: 'CHARGED', amount: 1000, refunded: 1000, balance: INITIAL_BALANCE_CENTS });
    const nothingLeft = await payments.refund({ chargeId, refundId: `${user}-r4` });
    assert.equal(nothingLeft.refunded, 1000);
    await rejectsWith(payments.refund({ chargeId, refundId: `${user}-r1`, amount: 200 }), 409, 'key-mismatch');
    const refunds = await store.db.selectFrom('refunds').select(['id', 'amount']).where('charge_id', '=', chargeId).orderBy('id').execute();
    assert.deepEqual(
      refunds.map((r) => [r.id, r.amount]),
      [
        [`${user}-r1`, 300],
        [`${user}-r3`, 700],
        [`${user}-r4`, 0],
      ],
    );
  });

  test('a refund before its charge leaves a VOID tombstone: 200 with refunded 0, and the late charge is refused', async () => {
    const chargeId = `${user}-early`;
    const view = await payments.refund({ chargeId, refundId: `${user}-r`, amount: 400 });
    assert.deepEqual(view, { chargeId, status: 'VOID', amount: 0, refunded: 0, balance: null });
    assert.deepEqual(await payments.refund({ chargeId, refundId: `${user}-r`, amount: 400 }), view, 'replay of the tombstoning refund');
    const before = await snapshot();
    await rejectsWith(payments.charge({ chargeId, userId: user, orderId: 'o', amount: 400 }), 409, 'charge-voided');
    assert.deepEqual(await snapshot(), before);
    const stored = await payments.findCharge(chargeId);
    assert.deepEqual(
      { ...stored, createdAt: undefined },
      { chargeId, userId: null, orderId: null, status: 'VOID', amount: 0, refunded: 0, createdAt: undefined },
    );
  });

  test('money is conserved after a mixed workload', async () => {
    const users = Array.from({ length: 5 }, (_, i) => `${user}-${i}`);
    const work: Promise<unknown>[] = [];
    for (const [i, u] of users.entries()) {
      work.push(payments.ensureWallet(u));
      for (let k = 0; k < 5; k++) {
        const chargeId = `${u}-c${k}`;
        work.push(
          payments
            .charge({ chargeId, userId: u, orderId: `${u}-o${k}`, amount: 1000 * (k + 1) + i })
            .then(() => payments.refund({ chargeId, refundId: `${chargeId}-r`, amount: k * 100 })),
        );
      }
      work.push(payments.refund({ chargeId: `${u}-never`, refundId: `${u}-never-r` }));
      work.push(payments.charge({ chargeId: `${u}-huge`, userId: u, orderId: 'o', amount: 10 * INITIAL_BALANCE_CENTS }).catch(() => 'refused'));
    }
    await Promise.all(work);
    const s = await payments.summary();
    assert.ok(moneyConserved(s), JSON.stringify(s));
    assert.ok(s.charged > 0 && s.refunded > 0);
  });

  test('the database itself refuses a negative balance or a refund above its charge', async () => {
    await payments.ensureWallet(user);
    await assert.rejects(sql`update wallets set balance = -1 where user_id = ${user}`.execute(store.db), /CHECK constraint failed/);
    await payments.charge({ chargeId: `${user}-c`, userId: user, orderId: 'o', amount: 10 });
    await assert.rejects(sql`update charges set refunded = 11 where id = ${`${user}-c`}`.execute(store.db), /CHECK constraint failed/);
    await assert.rejects(sql`update wallets set balance = deposited + 1 where user_id = ${user}`.execute(store.db), /CHECK constraint failed/);
  });
});
