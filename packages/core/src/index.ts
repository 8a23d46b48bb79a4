export * from './duration.js';
export * from './backoff.js';
export * from './balancer.js';
export * from './assert.js';
export * as saga from './saga/machine.js';
export * from './token-bucket.js';
export * from './breaker.js';
export * as mesh from './mesh/index.js';
export * from './histogram.js';
