/**
 * A minimal HTTP/1.1 client over raw sockets, for tests that must control every byte (CRLF in
 * headers, invalid UTF-8, smuggling attempts) or fire a burst with no client-side overhead
 * between requests (one pre-opened connection per request, written in one synchronous loop).
 */
import { type Socket, connect } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

const MAX_RESPONSE_BYTES = 8 * 1_048_576;

/** One keep-alive connection; answers are read in order. */
export class RawConnection {
  private buf: Buffer = Buffer.alloc(0);
  private waiting: { resolve: (r: RawResponse) => void; reject: (e: Error) => void } | null = null;
  private ended = false;
  private error: Error | null = null;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
      if (this.buf.length > MAX_RESPONSE_BYTES) socket.destroy(new Error('response too large'));
      this.pump();
    });
    socket.on('end', () => {
      this.ended = true;
      this.pump();
    });
    socket.on('close', () => {
      this.ended = true;
      this.pump();
    });
    socket.on('error', (err) => {
      this.error = err;
      this.pump();
    });
  }

  static open(host: string, port: number, timeoutMs = 5000): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      socket.setNoDelay(true);
      const timer = setTimeout(() => socket.destroy(new Error(`connect to ${host}:${port} timed out`)), timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new RawConnection(socket));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  write(bytes: string | Buffer): void {
    this.socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  }

  /** The next answer on this connection; rejects when none comes within `timeoutMs`. */
  next(timeoutMs = 10_000): Promise<RawResponse> {
    if (this.waiting) throw new Error('one read at a time');
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = null;
        reject(new Error(`no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting = {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.pump();
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private pump(): void {
    if (!this.waiting) return;
    const parsed = parseResponse(this.buf, this.ended);
    if (parsed) {
      this.buf = this.buf.subarray(parsed.used);
      const w = this.waiting;
      this.waiting = null;
      w.resolve(parsed.response);
      return;
    }
    if (this.ended || this.error) {
      const w = this.waiting;
      this.waiting = null;
      w.reject(this.error ?? new Error(`connection closed without an answer${this.buf.length ? ` (${this.buf.length} bytes of a partial one)` : ''}`));
    }
  }
}

/** Parses one response from the front of `buf`, or null when more bytes are needed. */
export function parseResponse(buf: Buffer, ended: boolean): { response: RawResponse; used: number } | null {
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd === -1) return null;
  const lines = buf.subarray(0, headEnd).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (!m) throw new Error(`not an HTTP response: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  const start = headEnd + 4;
  const status = Number(m[1]);
  if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
    const chunks: Buffer[] = [];
    let at = start;
    for (;;) {
      const lineEnd = buf.indexOf('\r\n', at);
      if (lineEnd === -1) return null;
      const size = Number.parseInt(buf.subarray(at, lineEnd).toString('latin1'), 16);
      if (!Number.isFinite(size)) throw new Error('bad chunk size');
      if (size === 0) {
        const end = buf.indexOf('\r\n\r\n', lineEnd);
        if (end === -1) return null;
        return { response: { status, headers, body: Buffer.concat(chunks) }, used: end + 4 };
      }
      if (buf.length < lineEnd + 2 + size + 2) return null;
      chunks.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
    }
  }
  if (headers['content-length'] !== undefined) {
    const len = Number(headers['content-length']);
    if (buf.length < start + len) return null;
    return { response: { status, headers, body: buf.subarray(start, start + len) }, used: start + len };
  }
  if (status === 204 || status === 304) return { response: { status, headers, body: Buffer.alloc(0) }, used: start };
  // No length: the body runs to the end of the connection.
  if (!ended) return null;
  return { response: { status, headers, body: buf.subarray(start) }, used: buf.length };
}

/** Sends one request on a fresh connection and reads its answer (the connection is closed after). */
export async function rawRequest(host: string, port: number, bytes: string | Buffer, timeoutMs = 10_000): Promise<RawResponse> {
  const c = await RawConnection.open(host, port);
  try {
    const answer = c.next(timeoutMs);
    c.write(bytes);
    return await answer;
  } finally {
    c.close();
  }
}
