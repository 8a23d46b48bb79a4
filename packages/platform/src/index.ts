export * from './service-kit/config.js';
export * from './service-kit/problem.js';
export * from './service-kit/server.js';
export * from './service-kit/logger.js';
export * from './service-kit/request-id.js';
export * from './registry-client/client.js';
