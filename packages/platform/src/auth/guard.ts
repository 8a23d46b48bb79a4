/**
 * Route guards for Fastify handlers: who is calling, and may they.
 */
import type { FastifyRequest } from 'fastify';
import type { MeshClient } from '../mesh/client.js';
import { HttpError } from '../service-kit/problem.js';
import { type Identity, TokenVerifier, bearerToken } from './tokens.js';

declare module 'fastify' {
  interface FastifyRequest {
    identity?: Identity;
  }
}

export class Guard {
  constructor(readonly verifier: TokenVerifier) {}

  /** A verifier that fetches the JWKS from the user service through the mesh. */
  static viaMesh(mesh: MeshClient): Guard {
    return new Guard(
      new TokenVerifier({
        fetchJwks: async () => {
          const r = await mesh.request<{ keys: [] }>('user', { path: '/.well-known/jwks.json', timeoutMs: 2000 });
          if (r.status !== 200) throw new Error(`user service answered ${r.status}`);
          return r.body;
        },
      }),
    );
  }

  async user(req: FastifyRequest): Promise<Identity> {
    if (req.identity) return req.identity;
    const id = await this.verifier.verify(bearerToken(req.headers.authorization));
    req.identity = id;
    return id;
  }

  async admin(req: FastifyRequest): Promise<Identity> {
    const id = await this.user(req);
    if (id.role !== 'admin') throw new HttpError(403, 'forbidden', 'this route needs the admin role');
    return id;
  }

  /** The caller must be `userId` or an admin. Others get 404, so ids of others do not leak. */
  async selfOrAdmin(req: FastifyRequest, userId: string, what = 'resource'): Promise<Identity> {
    const id = await this.user(req);
    if (id.role !== 'admin' && id.userId !== userId) throw new HttpError(404, 'not-found', `no such ${what}`);
    return id;
  }
}
