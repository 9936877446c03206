import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type Server } from 'node:http';
import { PROBLEM_CONTENT_TYPE } from '../problems/problem-details';
import { problemBody } from '../problems/write-problem';
import type { Duplex } from 'node:stream';

/** Node's parser errors that deserve a particular status; every other one is a 400. */
const STATUS_BY_CODE: Readonly<Record<string, number>> = {
  HPE_HEADER_OVERFLOW: 431,
  ERR_HTTP_REQUEST_TIMEOUT: 408,
};

/**
 * Requests Node cannot even parse (a bad method, a broken Content-Length, oversized headers)
 * never reach the app; Node would answer a bare 400. They get a problem body and a request id
 * like every other error.
 */
export function answerClientErrors(server: Server): void {
  server.on('clientError', answerClientError);
}

/** The `clientError` listener; Fastify takes it as its `clientErrorHandler` option instead. */
export function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const status = STATUS_BY_CODE[error.code ?? ''] ?? 400;
  const title = STATUS_CODES[status] ?? 'Bad Request';
  const body = problemBody(status, 'MALFORMED_REQUEST', 'The request is not valid HTTP/1.1');
  socket.end(
    `HTTP/1.1 ${status} ${title}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${randomUUID()}\r\nConnection: close\r\n\r\n${body}`,
  );
}
