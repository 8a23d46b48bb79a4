/** The CLI's own configuration: API.md's environment variables, validated. */
import { type ConfigOf, durationVar, enumVar, intVar, loadConfig, portVar, stringVar } from '@concord/platform';

export const cliSchema = {
  gatewayPort: portVar('CONCORD_GATEWAY_PORT', 8080),
  controlPort: portVar('CONCORD_CONTROL_PORT', 7700),
  dataDir: stringVar('CONCORD_DATA_DIR', '.concord'),
  profile: enumVar('CONCORD_PROFILE', 'embedded', ['embedded'] as const),
  topology: stringVar('CONCORD_TOPOLOGY', ''),
  seedProducts: intVar('CONCORD_SEED_PRODUCTS', 100, 0, 100_000),
  rateLimitPerUser: intVar('CONCORD_RATE_LIMIT_PER_USER', 50, 0, 1_000_000),
  rateLimitPerIp: intVar('CONCORD_RATE_LIMIT_PER_IP', 100, 0, 1_000_000),
  logFormat: enumVar('CONCORD_LOG_FORMAT', 'pretty', ['pretty', 'json'] as const),
  restartBackoffMaxMs: durationVar('CONCORD_RESTART_BACKOFF_MAX', 10_000, 0, 600_000),
};
export type CliConfig = ConfigOf<typeof cliSchema>;

export function cliConfig(env: NodeJS.ProcessEnv = process.env): CliConfig {
  return loadConfig(cliSchema, env);
}
