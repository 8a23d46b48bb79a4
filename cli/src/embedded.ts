/**
 * Starts a whole Concord system in this process's supervision, on free ports, with its own data
 * dir and a log file: used by `concord bench`, `concord chaos`, benchmarks and tests.
 */
import { appendFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { makeFormatter } from './supervisor/logs.js';
import { type ReadyInfo, Supervisor, type SupervisorOptions } from './supervisor/supervisor.js';
import { type Topology, parseTopology } from './supervisor/topology.js';

export interface EmbeddedSystem extends ReadyInfo {
  sup: Supervisor;
  dataDir: string;
  logFile: string;
  stop(): Promise<void>;
}

export async function startEmbedded(opts: {
  dir: string;
  topology: Topology | string;
  env?: Record<string, string>;
  beforeRestart?: SupervisorOptions['beforeRestart'];
  /** Keep an existing data dir (default: start clean). */
  keepData?: boolean;
  restartBackoffMaxMs?: number;
  network?: SupervisorOptions['network'];
  appsRoot?: SupervisorOptions['appsRoot'];
}): Promise<EmbeddedSystem> {
  mkdirSync(opts.dir, { recursive: true });
  const dataDir = join(opts.dir, 'data');
  if (!opts.keepData) rmSync(dataDir, { recursive: true, force: true });
  const logFile = join(opts.dir, 'system.log');
  rmSync(logFile, { force: true });
  const format = makeFormatter({ color: false, raw: false, width: 16 });
  const topology = typeof opts.topology === 'string' ? parseTopology(opts.topology, 'topology') : opts.topology;
  const sup = new Supervisor({
    topology,
    dataDir,
    controlPort: 0,
    gatewayPort: 0,
    env: { ...process.env, CONCORD_LOG_LEVEL: process.env.CONCORD_LOG_LEVEL ?? 'info', ...opts.env },
    output: (source, line) => appendFileSync(logFile, `${format(source, line)}\n`),
    beforeRestart: opts.beforeRestart,
    restartBackoffMaxMs: opts.restartBackoffMaxMs,
    network: opts.network,
    appsRoot: opts.appsRoot,
  });
  try {
    const ready = await sup.start();
    return { ...ready, sup, dataDir, logFile, stop: () => sup.stop() };
  } catch (err) {
    await sup.stop();
    throw new Error(`${(err as Error).message} (logs: ${logFile})`);
  }
}
