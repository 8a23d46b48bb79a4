/**
 * The user service: registration, login (scrypt), roles, JWTs signed with an Ed25519 key kept in
 * the data dir, public keys at /.well-known/jwks.json, and the seeded admin.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Guard,
  HttpError,
  OutboxRelay,
  type Store,
  TokenVerifier,
  type TraceContext,
  badRequest,
  durationVar,
  enqueue,
  intVar,
  isUniqueViolation,
  openServiceStore,
  runService,
  stringVar,
} from '@concord/platform';
import { Type } from '@sinclair/typebox';
import type { Kysely } from 'kysely';
import { loadOrCreateKey, signToken } from './domain/keys.js';
import { decoyHash, hashPassword, verifyPassword } from './domain/password.js';
import { isPlausibleEmail, normalizeEmail } from './domain/validation.js';
import { type UserDb, migrations } from './migrations.js';

const Credentials = {
  email: Type.String({ minLength: 3, maxLength: 254 }),
  password: Type.String({ minLength: 8, maxLength: 128 }),
};
const RegisterBody = Type.Object({ ...Credentials, name: Type.String({ minLength: 1, maxLength: 100 }) }, { additionalProperties: false });
const LoginBody = Type.Object({ email: Type.String({ minLength: 1, maxLength: 254 }), password: Type.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false });
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

interface UserRow {
  id: string;
  email: string;
  name: string;
  role: string;
}
const publicUser = (u: UserRow) => ({ id: u.id, email: u.email, name: u.name, role: u.role });

async function insertUser(store: Store<UserDb>, row: UserDb['users'], trace?: TraceContext | null): Promise<boolean> {
  try {
    await store.tx(async (trx) => {
      await (trx as Kysely<UserDb>).insertInto('users').values(row).execute();
      // The wallet is created through the outbox: it survives a payment outage or a crash.
      await enqueue(trx, { id: `wallet:${row.id}`, destination: 'payment', path: '/internal/wallets', body: { userId: row.id } });
    }, trace);
    return true;
  } catch (err) {
    if (isUniqueViolation(err)) return false;
    throw err;
  }
}

runService({
  name: 'user',
  dependsOn: ['payment'],
  config: {
    tokenTtlMs: durationVar('CONCORD_TOKEN_TTL', 3_600_000, 60_000, 7 * 86_400_000),
    scryptLogN: intVar('CONCORD_SCRYPT_COST', 14, 10, 20),
    adminEmail: stringVar('CONCORD_ADMIN_EMAIL', 'admin@concord.local'),
    adminPassword: stringVar('CONCORD_ADMIN_PASSWORD', '', /^.{8,128}$/, 'a password of 8 to 128 characters'),
  },
  async setup(ctx) {
    const { app, config } = ctx;
    const store = await openServiceStore<UserDb>(ctx, migrations);
    const db = store.db;
    const key = await loadOrCreateKey(join(ctx.dataDir, 'jwt-signing-key.json'));
    const jwks = { keys: [key.publicJwk] };
    const guard = new Guard(new TokenVerifier({ fetchJwks: async () => jwks as never }));
    const decoy = await decoyHash(config.scryptLogN);
    const relay = new OutboxRelay({ store, mesh: ctx.mesh, log: ctx.log });
    ctx.onClose(() => relay.close());

    await seedAdmin();

    app.get('/.well-known/jwks.json', async (_req, reply) => {
      reply.header('cache-control', 'public, max-age=300');
      return jwks;
    });

    app.post<{ Body: { email: string; password: string; name: string } }>('/api/auth/register', { schema: { body: RegisterBody } }, async (req, reply) => {
      const email = normalizeEmail(req.body.email);
      if (!isPlausibleEmail(email)) throw badRequest([{ path: '/body/email', message: 'must be an email address' }]);
      const name = req.body.name.trim();
      if (!name) throw badRequest([{ path: '/body/name', message: 'must not be blank' }]);
      const row = { id: randomUUID(), email, name, password_hash: await hashPassword(req.body.password, config.scryptLogN), role: 'user', created_at: new Date().toISOString() };
      if (!(await insertUser(store, row, req.trace?.ctx))) throw new HttpError(409, 'email-taken', 'an account with this email already exists');
      relay.kick();
      reply.code(201).header('location', `/api/users/${row.id}`);
      return { id: row.id, email, name };
    });

    app.post<{ Body: { email: string; password: string } }>('/api/auth/login', { schema: { body: LoginBody } }, async (req) => {
      const email = normalizeEmail(req.body.email);
      const user = await db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst();
      // Unknown emails cost one scrypt too, so timing does not reveal which accounts exist.
      const ok = await verifyPassword(req.body.password, user?.password_hash ?? decoy);
      if (!user || !ok) throw new HttpError(401, 'invalid-credentials', 'the email or password is wrong', {}, { 'www-authenticate': 'Bearer realm="concord"' });
      const ttlS = Math.floor(config.tokenTtlMs / 1000);
      const token = await signToken(key, { sub: user.id, role: user.role as 'user' | 'admin', email: user.email }, ttlS);
      return { token, tokenType: 'Bearer', expiresIn: ttlS };
    });

    app.get('/api/users/me', async (req) => {
      const id = await guard.user(req);
      const user = await db.selectFrom('users').select(['id', 'email', 'name', 'role']).where('id', '=', id.userId).executeTakeFirst();
      if (!user) throw new HttpError(404, 'not-found', 'this account no longer exists');
      return publicUser(user);
    });

    app.get<{ Params: { id: string } }>('/internal/users/:id', { schema: { params: IdParams } }, async (req) => {
      const user = await db.selectFrom('users').select(['id', 'email', 'name', 'role']).where('id', '=', req.params.id).executeTakeFirst();
      if (!user) throw new HttpError(404, 'not-found', 'no such user');
      return publicUser(user);
    });

    app.get('/api/admin/users/summary', async (req) => {
      await guard.admin(req);
      const r = await db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      return { count: Number(r.n) };
    });

    ctx.app.addHook('onReady', async () => relay.start());

    async function seedAdmin(): Promise<void> {
      const email = normalizeEmail(config.adminEmail);
      if (!isPlausibleEmail(email)) throw new Error(`CONCORD_ADMIN_EMAIL="${config.adminEmail}" is not an email address`);
      const existing = await db.selectFrom('users').select('id').where('email', '=', email).executeTakeFirst();
      if (existing) return;
      const generated = config.adminPassword === '';
      const password = generated ? randomBytes(18).toString('base64url') : config.adminPassword;
      const row = { id: randomUUID(), email, name: 'Administrator', password_hash: await hashPassword(password, config.scryptLogN), role: 'admin', created_at: new Date().toISOString() };
      if (!(await insertUser(store, row))) return; // another user instance seeded it first
      if (generated) {
        const file = join(ctx.dataDir, 'admin-password');
        writeFileSync(file, `${password}\n`, { mode: 0o600 });
        process.stderr.write(`\nconcord: seeded admin ${email} with generated password ${password} (also in ${file}); set CONCORD_ADMIN_PASSWORD to choose one.\n\n`);
      }
      ctx.log.info({ email }, 'seeded the admin account');
    }
  },
});
