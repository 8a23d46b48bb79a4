#!/usr/bin/env node
/** The `concord` command. */
import { ConfigError } from '@concord/platform';
import { APPLY_USAGE, apply } from './apply.js';
import { AUDIT_ARGS, auditCommand } from './audit-command.js';
import { CONFIG_USAGE, configCommand } from './config-status.js';
import { ArgError, type ArgSpec, parseArgs, usage } from './bench/args.js';
import { BENCH_USAGE, benchCommand } from './bench/command.js';
import { CHAOS_USAGE, chaosCommand } from './chaos/command.js';
import { ScenarioError } from './chaos/scenario.js';
import { STATUS_ARGS, status } from './status.js';
import { TopologyError } from './supervisor/topology.js';
import { up } from './up.js';

const USAGE = `usage: concord <command>

  up        start the whole system in the foreground (npm start)
  status    a table of instances: service, version, address, health, uptime, memory [--json]
  audit     check the system's invariants through the admin API (npm run audit)
  apply     apply Istio YAML to the mesh: concord apply -f <file.yaml | -> (all or nothing)
  config    concord config status [--json]: every mesh resource, applied or rejected, and each data plane's version
  bench     place orders through the gateway and report throughput and latency (concord bench --help)
  chaos     load plus scheduled faults (kill -9, pause, mesh faults), then an audit (concord chaos --help)
`;

/** The options of the commands that take `--name value` options, and what each does. */
const OPTION_COMMANDS: Record<string, { spec: ArgSpec; what: string }> = {
  up: { spec: {}, what: 'start the whole system in the foreground until Ctrl-C (configured by CONCORD_* variables: see README)' },
  status: { spec: STATUS_ARGS, what: 'a table of instances: service, version, address, health, uptime, memory' },
  audit: { spec: AUDIT_ARGS, what: "check the system's invariants through the admin API" },
};

/** `--help` for a command of OPTION_COMMANDS; anything it does not know stops it (exit 2) before it starts. */
function optionsOf(cmd: string, rest: string[]): ReturnType<typeof parseArgs> | null {
  const { spec, what } = OPTION_COMMANDS[cmd] as { spec: ArgSpec; what: string };
  if (rest.includes('--help')) {
    const options = Object.keys(spec).length > 0 ? ` [options]\n${usage(spec)}` : ' (no options)';
    process.stdout.write(`usage: concord ${cmd}${options}\n\n${what}\n`);
    return null;
  }
  return parseArgs(rest, spec);
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'up': {
      if (!optionsOf(cmd, rest)) return 0;
      return up();
    }
    case 'status': {
      const o = optionsOf(cmd, rest);
      return o ? status(o as { json: boolean }) : 0;
    }
    case 'audit': {
      const o = optionsOf(cmd, rest);
      return o ? auditCommand(o as { 'quiet-timeout': number }) : 0;
    }
    case 'apply':
      if (rest.includes('--help')) {
        process.stdout.write(`${APPLY_USAGE}\n`);
        return 0;
      }
      return apply(rest);
    case 'config':
      if (rest.includes('--help')) {
        process.stdout.write(CONFIG_USAGE);
        return 0;
      }
      return configCommand(rest);
    case 'bench':
      if (rest.includes('--help')) {
        process.stdout.write(BENCH_USAGE);
        return 0;
      }
      return benchCommand(rest);
    case 'chaos':
      if (rest.includes('--help')) {
        process.stdout.write(CHAOS_USAGE);
        return 0;
      }
      return chaosCommand(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return cmd === undefined ? 2 : 0;
    default:
      process.stderr.write(`concord: unknown command "${cmd}"\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof ArgError || err instanceof ScenarioError) {
      process.stderr.write(`concord: ${err.message}\n`);
      process.exit(2);
    }
    if (err instanceof ConfigError || err instanceof TopologyError) {
      process.stderr.write(`concord: ${err.message}\n`);
      process.exit(78);
    }
    process.stderr.write(`concord: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
