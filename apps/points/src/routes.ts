/**
 * The points service's HTTP surface. Internal routes are called by the order saga and the
 * gateway's dashboard; /api routes by users through the gateway.
 */
import type { Guard } from '@concord/platform';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { EntryKind } from './domain/ledger.js';
import { ID_MAX_CHARS, ID_PATTERN, MAX_POINTS } from './domain/limits.js';
import type { Points } from './points.js';

const Id = Type.String({ minLength: 1, maxLength: ID_MAX_CHARS, pattern: ID_PATTERN });
const EntryBody = Type.Object({ key: Id, userId: Id, orderId: Id, points: Type.Integer({ minimum: 0, maximum: MAX_POINTS }) }, { additionalProperties: false });
const UserParams = Type.Object({ userId: Id }, { additionalProperties: false });

export function pointsRoutes(app: FastifyInstance, points: Points, guard: Pick<Guard, 'user' | 'admin'>): void {
  const entryRoute = (path: string, kind: EntryKind) =>
    app.post<{ Body: Static<typeof EntryBody> }>(path, { schema: { body: EntryBody } }, async (req, reply) => {
      const { view, created } = await points.record({ kind, ...req.body });
      reply.code(created ? 201 : 200);
      return view;
    });
  entryRoute('/internal/points/award', 'AWARD');
  entryRoute('/internal/points/revoke', 'REVOKE');

  app.get<{ Params: Static<typeof UserParams> }>('/internal/points/:userId', { schema: { params: UserParams } }, async (req) =>
    points.balance(req.params.userId),
  );

  app.get('/api/points', async (req) => {
    const { userId } = await guard.user(req);
    return points.balance(userId);
  });

  app.get('/api/admin/points/summary', async (req) => {
    await guard.admin(req);
    return { totalPoints: await points.totalPoints() };
  });
}
