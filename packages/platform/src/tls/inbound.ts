/**
 * One port, two protocols: the first byte of a connection tells a TLS handshake (0x16) from
 * plaintext HTTP. TLS connections must present a client certificate from the mesh CA (mutual
 * TLS); plaintext ones are accepted or refused by the workload's PeerAuthentication mode
 * (PERMISSIVE accepts both, STRICT refuses plaintext, DISABLE refuses TLS). Both end up in the
 * same HTTP server, which reads the peer's identity from the socket.
 */
import type { Server as HttpServer } from 'node:http';
import { type Server, type Socket, createServer } from 'node:net';
import { type Server as TlsServer, TLSSocket, createServer as createTlsServer } from 'node:tls';
import { mesh } from '@concord/core';
import { spiffeOfCert } from './ca.js';
import type { WorkloadIdentity } from './identity.js';

const TLS_HANDSHAKE = 0x16;
const SNIFF_TIMEOUT_MS = 10_000;

export interface InboundPolicy {
  /** The PeerAuthentication mode in force for this workload now. */
  mode(): mesh.MtlsMode;
}

export interface InboundStats {
  tls: number;
  plaintext: number;
  refusedPlaintext: number;
  refusedTls: number;
  failedHandshakes: number;
}

export class InboundListener {
  readonly server: Server;
  readonly stats: InboundStats = { tls: 0, plaintext: 0, refusedPlaintext: 0, refusedTls: 0, failedHandshakes: 0 };
  /**
   * Runs the TLS handshakes (it never listens: sniffed sockets are handed to it). A tls.Server,
   * not a bare TLSSocket: only the server enforces `rejectUnauthorized` on the client's
   * certificate — a bare server-side TLSSocket completes the handshake with a certificate from
   * any CA (Node checks only that one was sent).
   */
  private readonly tls: TlsServer | null = null;

  constructor(
    private readonly http: HttpServer,
    identity: WorkloadIdentity | null,
    private readonly policy: InboundPolicy,
  ) {
    this.server = createServer({ pauseOnConnect: false, noDelay: true }, (socket) => this.onConnection(socket));
    const m = identity?.current;
    if (identity && m) {
      const tls = createTlsServer(
        { key: m.keyPem, cert: m.certPem, ca: m.caPem, requestCert: true, rejectUnauthorized: true, handshakeTimeout: SNIFF_TIMEOUT_MS },
        (tlsSocket) => {
          this.stats.tls++;
          this.http.emit('connection', tlsSocket);
        },
      );
      tls.on('tlsClientError', (_err, tlsSocket) => {
        this.stats.failedHandshakes++;
        tlsSocket.destroy();
      });
      identity.onRotate((next) => tls.setSecureContext({ key: next.keyPem, cert: next.certPem, ca: next.caPem }));
      this.tls = tls;
    }
  }

  private onConnection(socket: Socket): void {
    socket.setTimeout(SNIFF_TIMEOUT_MS, () => socket.destroy());
    socket.once('error', () => socket.destroy());
    socket.once('data', (first: Buffer) => {
      socket.setTimeout(0);
      socket.pause();
      socket.unshift(first);
      const mode = this.policy.mode();
      if (first[0] === TLS_HANDSHAKE) {
        if (!this.tls || mode === 'DISABLE') {
          this.stats.refusedTls++;
          socket.destroy();
          return;
        }
        this.tls.emit('connection', socket);
        return;
      }
      if (mode === 'STRICT') {
        this.stats.refusedPlaintext++;
        socket.destroy();
        return;
      }
      this.stats.plaintext++;
      this.http.emit('connection', socket);
      socket.resume();
    });
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ port, host }, () => {
        this.server.off('error', reject);
        const addr = this.server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
  }

  /**
   * Stops accepting connections. Open ones are the HTTP server's to drain (net.Server's close
   * callback would wait for every keep-alive connection, so it is not awaited).
   */
  close(): void {
    this.server.close();
  }
}

const principals = new WeakMap<object, string | null>();

/** The caller's Istio principal (`concord.local/ns/default/sa/order`), or null for plaintext. */
export function peerPrincipal(socket: object): string | null {
  if (!(socket instanceof TLSSocket)) return null;
  const cached = principals.get(socket);
  if (cached !== undefined) return cached;
  const spiffe = spiffeOfCert(socket.getPeerCertificate());
  const p = spiffe ? mesh.principalOf(spiffe) : null;
  principals.set(socket, p);
  return p;
}
