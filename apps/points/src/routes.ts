/**
 * The points service's HTTP surface. Internal routes are called by the order saga and the
 * gateway's dashboard; /api routes by users through the gateway.
 */
import { type Guard, type Store, batchRoute } from '@concord/platform';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { EntryKind } from './domain/ledger.js';
import { ID_MAX_CHARS, ID_PATTERN, MAX_POINTS } from './domain/limits.js';
import type { PointsDb } from './db.js';
import type { Points } from './points.js';

const Id = Type.String({ minLength: 1, maxLength: ID_MAX_CHARS, pattern: ID_PATTERN });
const EntryBody = Type.Object({ key: Id, userId: Id, orderId: Id, points: Type.Integer({ minimum: 0, maximum: MAX_POINTS }) }, { additionalProperties: false });
const UserParams = Type.Object({ userId: Id }, { additionalProperties: false });
/** One item of POST /internal/batch/points: an award or a revoke, each as its single route. */
const BatchItem = Type.Object({ op: Type.Union([Type.Literal('award'), Type.Literal('revoke')]), ...EntryBody.properties }, { additionalProperties: false });
type BatchItem = Static<typeof BatchItem>;

export function pointsRoutes(app: FastifyInstance, points: Points, guard: Pick<Guard, 'user' | 'admin'>, store: Store<PointsDb>): void {
  batchRoute<PointsDb, BatchItem>(app, {
    path: '/internal/batch/points',
    itemSchema: BatchItem,
    store,
    handle: async (bound, { op, ...entry }) => {
      const { view, created } = await points.withStore(bound).record({ kind: op === 'award' ? 'AWARD' : 'REVOKE', ...entry });
      return { status: created ? 201 : 200, body: view };
    },
  });
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
