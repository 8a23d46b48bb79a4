/**
 * Server-sent events for the console: one JSON `snapshot` event per push to every client,
 * serialised once; comment heartbeats keep idle proxies from closing the stream. Bounded in
 * clients and in what a slow client may have buffered (it is dropped; EventSource reconnects).
 */
import type { ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';

export interface StreamOptions {
  maxClients: number;
  heartbeatMs: number;
  /** A client with more than this buffered is dropped. */
  maxBufferedBytes: number;
  /** The reconnect delay EventSource is told. */
  retryMs: number;
}

export const DEFAULT_STREAM_OPTIONS: StreamOptions = { maxClients: 64, heartbeatMs: 15_000, maxBufferedBytes: 4 * 1_048_576, retryMs: 2000 };

export class StreamHub {
  private readonly clients = new Set<ServerResponse>();
  private readonly heartbeat: NodeJS.Timeout;
  private closed = false;
  private lastPayload: string | null = null;

  constructor(
    private readonly snapshot: () => unknown,
    private readonly opts: StreamOptions = DEFAULT_STREAM_OPTIONS,
  ) {
    this.heartbeat = setInterval(() => this.writeAll(': heartbeat\n\n'), opts.heartbeatMs);
    this.heartbeat.unref();
  }

  get size(): number {
    return this.clients.size;
  }

  get full(): boolean {
    return this.clients.size >= this.opts.maxClients;
  }

  /** Takes over the response; the caller must have checked `full` and `closed`. */
  attach(req: FastifyRequest, reply: FastifyReply): void {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      'x-request-id': req.id,
    });
    res.socket?.setNoDelay(true);
    this.clients.add(res);
    const drop = () => this.clients.delete(res);
    res.once('close', drop);
    req.raw.once('close', drop);
    res.write(`retry: ${this.opts.retryMs}\n\n`);
    this.send(res, this.frame());
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private frame(): string {
    const data = JSON.stringify(this.snapshot());
    this.lastPayload = data;
    return `event: snapshot\ndata: ${data}\n\n`;
  }

  /** Sends a fresh snapshot to every client (nothing is computed without clients). */
  push(): void {
    if (this.closed || this.clients.size === 0) return;
    this.writeAll(this.frame());
  }

  /** The JSON of the latest snapshot pushed (for tests and debugging). */
  get last(): string | null {
    return this.lastPayload;
  }

  private writeAll(text: string): void {
    for (const res of this.clients) this.send(res, text);
  }

  private send(res: ServerResponse, text: string): void {
    if (res.writableEnded || res.destroyed) {
      this.clients.delete(res);
      return;
    }
    if (res.writableLength > this.opts.maxBufferedBytes) {
      // Too slow to keep up: let it reconnect and start from a fresh snapshot.
      this.clients.delete(res);
      res.destroy();
      return;
    }
    res.write(text);
  }

  /** Ends every stream (shutdown): clients see the end at once rather than at a timeout. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    for (const res of this.clients) res.end();
    this.clients.clear();
  }
}
