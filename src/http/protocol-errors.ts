/**
 * Answers for requests that never reach a route, in the API's one error shape
 * `{"error":{"code","message"}}` instead of Node's or fastify's own:
 *  - connection-level parse errors (Node's `clientError`): malformed request
 *    lines or headers, bad framing (Transfer-Encoding with Content-Length,
 *    invalid chunk sizes), and headers over Node's 16 KiB limit (431). The
 *    request was never parsed, so the answer is written on the socket and the
 *    connection closed;
 *  - paths that are not valid percent-encoding, and path parameters over the
 *    router's limit (fastify's `frameworkErrors`);
 *  - CONNECT (Node hands it to a `connect` listener, or drops the socket
 *    without a word), unknown `Expect` values (Node's bare 417), a request
 *    target with a fragment, and HTTP/1.1 without Host (Node's bare 400).
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sendError } from './errors.js';

function errorBody(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

/** A complete HTTP/1.1 response for a connection whose request could not be parsed. */
function rawResponse(status: number, code: string, message: string): string {
  const body = errorBody(code, message);
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
    'Content-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Connection: close\r\n\r\n' +
    body
  );
}

function answerOnSocket(socket: Duplex, status: number, code: string, message: string): void {
  if (socket.destroyed) return;
  if (socket.writable) socket.end(rawResponse(status, code, message));
  // The client may still be sending (an oversize header): don't wait on it for long.
  setTimeout(() => socket.destroy(), 2_000).unref();
}

/** Node `clientError`: the request could not be parsed (or timed out before it was). */
export function clientErrorHandler(this: FastifyInstance, err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      answerOnSocket(socket, 431, 'HEADERS_TOO_LARGE', 'the request line and headers are larger than 16 KiB');
      break;
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      answerOnSocket(socket, 408, 'REQUEST_TIMEOUT', 'the request was not received in time');
      break;
    default:
      answerOnSocket(socket, 400, 'BAD_REQUEST', `malformed HTTP request${err.code ? ` (${err.code})` : ''}`);
  }
  this.log.debug({ code: err.code }, 'malformed HTTP request answered');
}

/** fastify `frameworkErrors`: the router refused the URL before any route ran. */
export function frameworkErrorHandler(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): FastifyReply {
  switch (error.code) {
    case 'FST_ERR_BAD_URL':
      return sendError(reply, 400, 'BAD_URL', 'the request path is not valid percent-encoded UTF-8');
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return sendError(reply, 414, 'URI_TOO_LONG', 'a path segment is longer than the limit');
    default:
      return sendError(reply, 400, 'BAD_REQUEST', error.message);
  }
}

/** Node-level hooks of the server itself (CONNECT, Expect). */
export function installServerHandlers(app: FastifyInstance): void {
  app.server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    answerOnSocket(socket, 404, 'NOT_FOUND', `no route for CONNECT ${String(req.url).slice(0, 200)}`);
  });
  app.server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    const body = errorBody('EXPECTATION_FAILED', `Expect: ${String(req.headers.expect).slice(0, 100)} is not supported (only 100-continue)`);
    res.writeHead(417, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' });
    res.end(body);
  });
  app.addHook('onRequest', async (request, reply) => {
    const raw = request.raw;
    if (raw.httpVersion === '1.1' && request.headers.host === undefined) {
      return sendError(reply, 400, 'BAD_REQUEST', 'HTTP/1.1 requests must carry a Host header');
    }
    // A fragment never belongs in a request target (RFC 9112 §3.2); routers disagree on what it means.
    if (raw.url?.includes('#')) return sendError(reply, 400, 'BAD_URL', 'the request target must not contain a fragment (#)');
    return undefined;
  });
}

/** Node server options that let the handlers above answer instead of Node. */
export const SERVER_OPTIONS = { requireHostHeader: false } as const;
