#!/usr/bin/env node
/** The `concord` command. */
import { ConfigError } from '@concord/platform';
import { auditCommand } from './audit-command.js';
import { status } from './status.js';
import { TopologyError } from './supervisor/topology.js';
import { up } from './up.js';

const USAGE = `usage: concord <command>

  up        start the whole system in the foreground (npm start)
  status    a table of instances: service, version, address, health, uptime, memory [--json]
  audit     check the system's invariants through the admin API (npm run audit)
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'up':
      return up();
    case 'status':
      return status(rest);
    case 'audit':
      return auditCommand(rest);
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
    if (err instanceof ConfigError || err instanceof TopologyError) {
      process.stderr.write(`concord: ${err.message}\n`);
      process.exit(78);
    }
    process.stderr.write(`concord: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
