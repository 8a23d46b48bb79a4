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

/** The options of the commands parsed here, and what each does. */
const OPTION_COMMANDS: Record<string, { spec: ArgSpec; what: string }> = {
  up: { spec: {}, what: 'start the whole system in the foreground until Ctrl-C (configured by CONCORD_* variables: see README)' },
  status: { spec: STATUS_ARGS, what: 'a table of instances: service, version, address, health, uptime, memory' },
  audit: { spec: AUDIT_ARGS, what: "check the system's invariants through the admin API" },
};

/** The usage of the commands that parse their own arguments. */
const OWN_USAGES: Record<string, string> = { apply: `${APPLY_USAGE}\n`, config: CONFIG_USAGE, bench: BENCH_USAGE, chaos: CHAOS_USAGE };

const asksHelp = (rest: string[]) => rest.includes('--help') || rest.includes('-h');

/** A command's usage when it is asked for (`--help`, `-h`), else null. */
function helpOf(cmd: string, rest: string[]): string | null {
  if (!asksHelp(rest)) return null;
  const own = OWN_USAGES[cmd];
  if (own !== undefined) return own;
  const { spec, what } = OPTION_COMMANDS[cmd] as { spec: ArgSpec; what: string };
  const options = Object.keys(spec).length > 0 ? ` [options]\n${usage(spec)}` : ' (no options)';
  return `usage: concord ${cmd}${options}\n\n${what}\n`;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const help = cmd && (OPTION_COMMANDS[cmd] || OWN_USAGES[cmd]) ? helpOf(cmd, rest) : null;
  if (help !== null) {
    process.stdout.write(help);
    return 0;
  }
  // Anything a command does not know stops it (exit 2, ArgError) before it starts.
  switch (cmd) {
    case 'up':
      parseArgs(rest, OPTION_COMMANDS.up?.spec ?? {});
      return up();
    case 'status':
      return status(parseArgs(rest, STATUS_ARGS));
    case 'audit':
      return auditCommand(parseArgs(rest, AUDIT_ARGS));
    case 'apply':
      return apply(rest);
    case 'config':
      return configCommand(rest);
    case 'bench':
      return benchCommand(rest);
    case 'chaos':
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
