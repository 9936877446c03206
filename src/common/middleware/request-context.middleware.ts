import type { IncomingMessage, ServerResponse } from 'node:http';
import { REQUEST_ID_HEADER, startRequestContext } from '../http/request-context';
import type { RequestLogger } from '../logging/request-logger';

/**
 * First in the chain, before body parsing: gives every request an id (the client's
 * `X-Request-Id` when it is plain, a UUID otherwise), echoes it, and logs one line when the
 * response finishes, whatever answered it (handler, guard, parser or the not-found route).
 * Plain Node types, so it runs on any adapter.
 */
export function requestContextMiddleware(logger: RequestLogger) {
  return (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    const context = startRequestContext(req);
    res.setHeader(REQUEST_ID_HEADER, context.id);
    res.once('finish', () => logger.log(req, res.statusCode, context));
    next();
  };
}
