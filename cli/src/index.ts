export * from './supervisor/supervisor.js';
export * from './supervisor/topology.js';
export * from './supervisor/logs.js';
export * from './status.js';
export * from './paths.js';
export * from './audit/audit.js';
export * from './audit/checks.js';
