/**
 * Test-only fault switches. With CONCORD_TEST_FAULTS=1 a process accepts
 * `POST /internal/test/faults {"crash": ["before:charge", …]}`; when code passes an armed
 * point, the process kills itself with SIGKILL (as `kill -9` would), once per arming. Armings
 * live in memory, so the restarted process runs clean. Without the variable the route does not
 * exist and `point()` costs one Set lookup.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from './logger.js';

const MAX_ARMED = 100;

export class Faults {
  private readonly armed = new Set<string>();

  constructor(readonly enabled: boolean, private readonly log: Logger) {}

  routes(app: FastifyInstance): void {
    if (!this.enabled) return;
    app.post<{ Body: { crash: string[] } }>(
      '/internal/test/faults',
      {
        schema: {
          body: {
            type: 'object',
            additionalProperties: false,
            required: ['crash'],
            properties: { crash: { type: 'array', maxItems: MAX_ARMED, items: { type: 'string', minLength: 1, maxLength: 100 } } },
          },
        },
      },
      async (req) => {
        this.armed.clear();
        for (const p of req.body.crash) this.armed.add(p);
        return { armed: [...this.armed] };
      },
    );
  }

  /** Dies here if this point is armed. */
  point(name: string): void {
    if (this.armed.size === 0 || !this.armed.has(name)) return;
    this.armed.delete(name);
    this.log.warn({ point: name }, 'test fault: killing this process (SIGKILL)');
    process.kill(process.pid, 'SIGKILL');
  }
}
