/**
 * Answers for requests that never become requests: bytes the HTTP parser refuses (bad request
 * lines, CR/LF tricks, smuggling attempts, oversized headers) and CONNECT. Node's defaults
 * answer the first with a JSON body that is not a problem document and without saying the
 * connection closes, and drop CONNECT without a word; here both get a problem+json answer and
 * `Connection: close`.
 */
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { problem, statusTitle } from '@concord/platform';

interface ParserError extends Error {
  code?: string;
}

/** Parser error codes (llhttp's HPE_*, Node's ERR_HTTP_*) → status and problem slug. */
function classify(err: ParserError): { status: number; slug: string; detail: string } {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, slug: 'headers-too-large', detail: 'the request line and headers are larger than this server accepts' };
    case 'HPE_URI_TOO_LONG':
      return { status: 414, slug: 'uri-too-long', detail: 'the request target is longer than this server accepts' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, slug: 'request-timeout', detail: 'the request did not arrive in time' };
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_TRANSFER_ENCODING':
    case 'HPE_INVALID_CONTENT_LENGTH':
      return { status: 400, slug: 'bad-framing', detail: 'Content-Length and Transfer-Encoding do not frame the body unambiguously' };
    default:
      return { status: 400, slug: 'malformed-request', detail: 'the request is not valid HTTP/1.1' };
  }
}

function closingAnswer(status: number, slug: string, detail: string, extra = ''): string {
  const body = JSON.stringify(problem(status, slug, detail));
  return (
    `HTTP/1.1 ${status} ${statusTitle(status)}\r\n` +
    `content-type: application/problem+json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`
  );
}

/** Replaces the server's client-error and CONNECT handling (call once, after the server exists). */
export function answerProtocolErrors(server: Server): void {
  server.removeAllListeners('clientError');
  server.on('clientError', (err: ParserError, socket: Duplex) => {
    // Nothing to tell a peer that is gone, or one whose answer has already started.
    const pending = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || pending?.headersSent) {
      socket.destroy();
      return;
    }
    const c = classify(err);
    socket.end(closingAnswer(c.status, c.slug, c.detail));
  });
  server.on('connect', (_req, socket: Duplex) => {
    socket.end(closingAnswer(405, 'method-not-allowed', 'CONNECT is not supported: this is an API gateway, not a forward proxy', 'allow: GET, POST\r\n'));
  });
}
