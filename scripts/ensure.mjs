#!/usr/bin/env node
// Makes a clone runnable: installs missing dependencies, checks the native SQLite binding and
// builds stale output. Plain Node (no dependencies), so it works before `npm install`.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const say = (msg) => process.stderr.write(`[ensure] ${msg}\n`);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function run(cmd, args, what) {
  const t0 = Date.now();
  const r = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], env: process.env });
  if (r.status !== 0) {
    say(`${what} failed (exit ${r.status ?? r.signal}). Fix the error above and run the command again.`);
    process.exit(r.status || 1);
  }
  say(`${what} done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 18)) {
  say(`Node.js ${process.versions.node} is too old: Concord needs Node.js 20.18 or newer.`);
  process.exit(1);
}

// 1. Dependencies: install when missing or when the lock file changed since the last install.
const lock = join(root, 'package-lock.json');
const stampFile = join(root, 'node_modules', '.concord-install-stamp');
const digest = createHash('sha256')
  .update(existsSync(lock) ? readFileSync(lock) : '')
  .update(readFileSync(join(root, 'package.json')))
  .digest('hex');
const stamp = existsSync(stampFile) ? readFileSync(stampFile, 'utf8').trim() : '';
if (stamp !== digest) {
  const fresh = !existsSync(join(root, 'node_modules'));
  say(fresh ? 'installing dependencies (first run; builds the SQLite binding, about a minute)…' : 'dependencies changed; installing…');
  run(npm, [fresh && existsSync(lock) ? 'ci' : 'install', '--no-audit', '--no-fund'], 'npm install');
  writeFileSync(stampFile, `${digest}\n`);
}

// 2. The native SQLite binding must load in this Node.js (a Node upgrade breaks it).
try {
  const require = createRequire(join(root, 'packages', 'platform', 'package.json'));
  const Database = require('better-sqlite3');
  new Database(':memory:').close();
} catch (err) {
  say(`the SQLite binding does not load (${err.message.split('\n')[0]}); rebuilding it…`);
  run(npm, ['rebuild', 'better-sqlite3'], 'npm rebuild better-sqlite3');
}

// 3. TypeScript, incremental: near-instant when nothing changed.
run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-b', 'tsconfig.json'], 'build');

// 4. The console (web app), when present and stale.
const consoleDir = join(root, 'console');
if (existsSync(join(consoleDir, 'package.json'))) {
  const newest = (dir) => {
    try {
      return Number(execFileSync('find', [dir, '-type', 'f', '-printf', '%T@\\n'], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number).reduce((a, b) => Math.max(a, b), 0));
    } catch {
      return 0;
    }
  };
  const built = join(consoleDir, 'dist', 'index.html');
  const srcTime = Math.max(newest(join(consoleDir, 'src')), newest(join(consoleDir, 'index.html')));
  const outTime = existsSync(built) ? newest(join(consoleDir, 'dist')) : 0;
  if (outTime < srcTime) run(npm, ['run', 'build', '-w', 'console', '--silent'], 'console build');
}
