import type { IncomingMessage, ServerResponse } from 'node:http';
import { REQUEST_ID_HEADER, startRequestContext } from '../http/request-context';
import { writeProblem } from '../problems/write-problem';
import type { RequestLogger } from '../logging/request-logger';

/**
 * First in the chain, before body parsing: gives every request an id (the client's
 * `X-Request-Id` when it is plain, a UUID otherwise), echoes it, and logs one line when the
 * response ends, whatever answered it (handler, guard, parser or the not-found route), or
 * when the client goes away first.
 * Plain Node types, so it runs on any adapter.
 */
const CLIENT_CLOSED = 499;
/** Longest request target (path and query) served; longer ones get 414. */
export const MAX_URL_LENGTH = 8192;

export function requestContextMiddleware(logger: RequestLogger) {
  return (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    const context = startRequestContext(req);
    res.setHeader(REQUEST_ID_HEADER, context.id);
    if ((req.url ?? '').length > MAX_URL_LENGTH) {
      res.once('close', () => logger.log(req, res.statusCode, context));
      writeProblem(res, 414, 'URI_TOO_LONG', `The URL is longer than ${MAX_URL_LENGTH} characters`);
      return;
    }
    // 'close' follows 'finish' for a completed response and also ends an aborted one, which
    // is logged with 499 (client closed the request), as nginx does.
    res.once('close', () =>
      logger.log(req, res.writableFinished ? res.statusCode : CLIENT_CLOSED, context),
    );
    next();
  };
}
