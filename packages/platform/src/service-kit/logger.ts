import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(fields: { service: string; instance: string; version: string }, level: string): Logger {
  return pino({
    level,
    base: { service: fields.service, instance: fields.instance, version: fields.version, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
