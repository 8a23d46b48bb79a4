/**
 * The storage layer's promise: every service runs unchanged on PostgreSQL or MySQL (MariaDB)
 * when its topology gives it a CONCORD_DB_URL. The whole system — two recommendation instances
 * sharing one database, so their migrations race at start (the ready line needs both) — takes a short `concord bench` on each server and
 * the audit passes; the orders are in the server's tables, not in a SQLite file.
 * Skipped with a message when the server or its command-line client is missing.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { outputDir, runCli } from './harness.js';

const SERVICES = ['user', 'inventory', 'payment', 'points', 'recommendation', 'order'] as const;

interface Server {
  name: string;
  /** Runs one SQL statement on `db` (null: the server's default database); its output, or null on failure. */
  sql(db: string | null, statement: string): string | null;
  url(db: string): string;
  missing: string;
}

function run(cmd: string, args: string[]): string | null {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 20_000 });
  return r.status === 0 ? r.stdout : null;
}

const SERVERS: Server[] = [
  {
    name: 'PostgreSQL',
    sql: (db, s) => run('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-d', db ?? 'postgres', '-tAqc', s]),
    url: (db) => `postgres://postgres@127.0.0.1:5432/${db}`,
    missing: 'PostgreSQL is not reachable at 127.0.0.1:5432 as user postgres (or psql is missing)',
  },
  {
    name: 'MySQL',
    sql: (db, s) => run('mariadb', ['-h', '127.0.0.1', '-u', 'root', '-N', '-B', ...(db ? [db] : []), '-e', s]),
    url: (db) => `mysql://root@127.0.0.1:3306/${db}`,
    missing: 'MariaDB/MySQL is not reachable at 127.0.0.1:3306 as root (or the mariadb client is missing)',
  },
];

for (const server of SERVERS) {
  test(`on ${server.name}: every service migrates (two instances sharing a database), a 5 s bench passes the audit, and the orders are in ${server.name}`, async (t) => {
    if (server.sql(null, 'select 1')?.trim() !== '1') {
      t.skip(`${server.missing}; the ${server.name} run is skipped`);
      return;
    }
    const prefix = `concord_t${process.pid}`;
    const dbOf = (s: string) => `${prefix}_${s}`;
    for (const s of SERVICES) {
      assert.notEqual(server.sql(null, `drop database if exists ${dbOf(s)}`), null);
      assert.notEqual(server.sql(null, `create database ${dbOf(s)}`), null, `create database ${dbOf(s)}`);
    }
    try {
      const dir = outputDir(`db-${server.name.toLowerCase()}`);
      const topology = join(dir, 'topology.yaml');
      const services = SERVICES.map((s) => {
        const env = `    env: { CONCORD_DB_URL: "${server.url(dbOf(s))}" }\n`;
        return s === 'recommendation' ? `  - name: recommendation\n    instances: 2\n    versions: [v1, v2]\n${env}` : `  - name: ${s}\n${env}`;
      });
      writeFileSync(topology, `services:\n${services.join('')}  - name: gateway\n`);
      const r = await runCli(['bench', '--topology', topology, '--duration', '5s', '--connections', '8', '--out', dir], 240_000);
      assert.equal(r.code, 0, r.out.slice(-3000));
      assert.match(r.out, /audit passed/);
      const acked = Number(/acknowledged \(201\/202\)\s+(\d+)/.exec(r.out)?.[1] ?? 0);
      assert.ok(acked > 0, 'orders were acknowledged');
      // Every acknowledged order is a row of the server's own table (none in a SQLite file).
      const rows = Number(server.sql(dbOf('order'), 'select count(*) from orders')?.trim());
      assert.equal(rows, acked, `the ${acked} acknowledged orders are rows in ${server.name}`);
      // The order events reached the recommendation service through the outbox, and its upsert
      // (a dialect's own syntax: ON CONFLICT, or MySQL's ON DUPLICATE KEY UPDATE) counted them.
      const events = Number(server.sql(dbOf('recommendation'), 'select count(*) from processed_events')?.trim());
      const scored = Number(server.sql(dbOf('recommendation'), 'select count(*) from scores where units > 0')?.trim());
      assert.ok(events > 0 && scored > 0, `recommendation applied ${events} events, ${scored} products scored`);
      // No service logged an error: a statement in one dialect's syntax only, or a deadlock
      // answered as a failure, shows here first (the system log is written when anything is logged).
      const log = /logs in (\S+system\.log)/.exec(r.out)?.[1];
      assert.ok(log, 'the bench names its system log');
      const errors = existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter((l) => / ERROR /.test(l)) : [];
      assert.deepEqual(errors.slice(0, 3), [], `${errors.length} error lines in ${log}`);
    } finally {
      for (const s of SERVICES) server.sql(null, `drop database if exists ${dbOf(s)}`);
    }
  });
}
