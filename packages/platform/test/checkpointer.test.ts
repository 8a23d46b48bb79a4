/**
 * WAL checkpoints on a worker thread (store/checkpointer.ts): the worker moves committed pages
 * into the database file while the service's commits only append to the log; a process killed
 * mid-way loses no acknowledged write; a worker that cannot run hands checkpoints back.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Checkpointer } from '../src/store/checkpointer.js';
import { createLogger } from '../src/service-kit/logger.js';
import { Store, rawSql } from '../src/store/store.js';

const dir = mkdtempSync(join(tmpdir(), 'concord-checkpoint-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const log = createLogger({ service: 'checkpoint-test', instance: 'test', version: 'v1' }, 'silent');
const PAGE_BYTES = 4096;

/** Commits `n` rows of ~100 bytes, one transaction each: about one log page per commit (the table's last leaf). */
async function writeRows(store: Store<unknown>, n: number): Promise<void> {
  const filler = 'x'.repeat(100);
  for (let i = 0; i < n; i++) await store.tx((trx) => rawSql(trx, `insert into t (v) values ('${filler}${i}')`));
}

async function openWith(name: string, mode: 'background' | 'inline'): Promise<{ store: Store<unknown>; path: string }> {
  const path = join(dir, `${name}.db`);
  const store = await Store.open<unknown>({ url: `sqlite:${path}`, log, sqliteCheckpoint: mode });
  await store.migrate([
    {
      version: 1,
      name: 't',
      up: (db) =>
        db.schema
          .createTable('t')
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('v', 'text')
          .execute(),
    },
  ]);
  return { store, path };
}

/** The database file's size (the log's pages are not in it until a checkpoint copies them). */
const fileBytes = (path: string) => statSync(path).size;

test('the worker copies committed pages into the database file; commits themselves only append to the log', async () => {
  // 600 commits of about one log page each: below SQLite's own threshold (1,000 pages), so inline
  // commits never checkpoint them; past START_AFTER_COMMITS, so the background store's worker runs.
  // The rows fill ~17 pages of the database file once checkpointed.
  const inline = await openWith('inline', 'inline');
  const inlineBefore = fileBytes(inline.path);
  await writeRows(inline.store, 600);
  assert.equal(fileBytes(inline.path), inlineBefore, 'inline: the pages stay in the log');
  await inline.store.close();

  const bg = await openWith('background', 'background');
  const before = fileBytes(bg.path);
  await writeRows(bg.store, 600);
  // Bounded wait for the worker's timer (every 200 ms): at most 100 polls of 50 ms.
  let grown = 0;
  for (let i = 0; i < 100 && grown < 12 * PAGE_BYTES; i++) {
    await new Promise((r) => setTimeout(r, 50));
    grown = fileBytes(bg.path) - before;
  }
  assert.ok(grown >= 12 * PAGE_BYTES, `the database file grew by ${grown} bytes: the worker checkpointed the log`);
  const rows = (await rawSql(bg.store.db, 'select count(*) as n from t')) as { rows: Array<{ n: number }> };
  assert.equal(rows.rows[0]?.n, 600);
  await bg.store.close();
});

/** A child that commits rows one transaction at a time and prints each id once its commit returned. */
const WRITER = `
import { Store, rawSql } from ${JSON.stringify(new URL('../src/store/store.js', import.meta.url).href)};
import { createLogger } from ${JSON.stringify(new URL('../src/service-kit/logger.js', import.meta.url).href)};
const store = await Store.open({ url: 'sqlite:' + process.argv[2], log: createLogger({ service: 'w', instance: 'w', version: 'v1' }, 'silent'), sqliteCheckpoint: 'background' });
await store.migrate([{ version: 1, name: 't', up: (db) => db.schema.createTable('t').addColumn('id', 'integer', (c) => c.primaryKey()).addColumn('v', 'text').execute() }]);
const filler = 'y'.repeat(3000);
for (let i = 1; i <= 100000; i++) {
  await store.tx((trx) => rawSql(trx, "insert into t (id, v) values (" + i + ", '" + filler + "')"));
  process.stdout.write(i + '\\n');
}
`;

test('kill -9 while the worker checkpoints: every acknowledged commit is there after a restart', { timeout: 60_000 }, async () => {
  const script = join(dir, 'writer.mjs');
  writeFileSync(script, WRITER);
  const path = join(dir, 'killed.db');
  const child = spawn(process.execPath, [script, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  let acked = 0;
  let buf = '';
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  // Killed once 3,000 commits (~12 MiB of log, many worker checkpoints) were acknowledged.
  await new Promise<void>((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() as string;
      for (const l of lines) acked = Math.max(acked, Number(l));
      if (acked >= 3000) {
        child.kill('SIGKILL');
        resolve();
      }
    });
    void exited.then(() => resolve());
  });
  assert.equal(await exited, 'SIGKILL', 'the writer was killed, not ended on its own');
  const { store } = { store: await Store.open<unknown>({ url: `sqlite:${path}`, log, sqliteCheckpoint: 'background' }) };
  const r = (await rawSql(store.db, 'select count(*) as n, max(id) as top from t')) as { rows: Array<{ n: number; top: number }> };
  await store.close();
  const { n, top } = r.rows[0] as { n: number; top: number };
  assert.ok(top >= acked, `acknowledged up to ${acked}, stored up to ${top}`);
  assert.equal(n, top, 'no gap: every committed id is there');
});

test('a worker that cannot open its database reports why (the store then checkpoints inside its commits again)', async () => {
  // The worker never holds a process open (unref): a timer does, and bounds the wait.
  let guard: NodeJS.Timeout | undefined;
  const stopped = await new Promise<Error | null>((resolve) => {
    guard = setTimeout(() => resolve(null), 10_000);
    new Checkpointer({ path: join(dir, 'no-such-dir', 'x.db'), startAfterCommits: 0, onStopped: resolve });
  });
  clearTimeout(guard);
  assert.ok(stopped, 'reported within 10 s');
  assert.match(stopped.message, /unable to open database file|no such file|directory does not exist/i);
});
