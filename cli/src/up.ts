/** `concord up`: runs the whole system in the foreground until Ctrl-C or SIGTERM. */
import { cliConfig } from './config.js';
import { DEFAULT_TOPOLOGY } from './paths.js';
import { makeFormatter } from './supervisor/logs.js';
import { Supervisor } from './supervisor/supervisor.js';
import { loadTopology } from './supervisor/topology.js';

export async function up(): Promise<number> {
  const cfg = cliConfig();
  const topology = loadTopology(cfg.topology || DEFAULT_TOPOLOGY);
  const format = makeFormatter({ color: process.stdout.isTTY === true, raw: cfg.logFormat === 'json', width: 16 });
  const sup = new Supervisor({
    topology,
    dataDir: cfg.dataDir,
    controlPort: cfg.controlPort,
    gatewayPort: cfg.gatewayPort,
    env: process.env,
    output: (source, line) => process.stdout.write(`${format(source, line)}\n`),
    restartBackoffMaxMs: cfg.restartBackoffMaxMs,
  });
  let stopping: Promise<void> | null = null;
  const stop = (sig: string) => {
    if (stopping) return;
    process.stdout.write(`${format('supervisor', `${sig}: stopping every process`)}\n`);
    const forced = setTimeout(() => {
      process.stderr.write('concord: stop took longer than 10 s; exiting\n');
      process.exit(1);
    }, 10_000);
    forced.unref();
    stopping = sup.stop().then(() => {
      process.stdout.write(`${format('supervisor', 'stopped')}\n`);
      process.exit(0);
    });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  // `concord up | head`: once the output cannot be written (its reader gone, EPIPE, or any other
  // failure) stop as on Ctrl-C rather than die of the write error and leave every process to
  // notice on its own.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') process.stderr.write(`concord: writing the output failed (${err.code ?? err.message}); stopping\n`);
    stop('output failed');
  });
  try {
    const ready = await sup.start();
    process.stdout.write(`concord ready gateway=${ready.gatewayUrl ?? 'none'} console=${ready.controlUrl}\n`);
  } catch (err) {
    process.stderr.write(`concord: start failed: ${(err as Error).message}\n`);
    await sup.stop();
    return 1;
  }
  return await new Promise<number>(() => {});
}
