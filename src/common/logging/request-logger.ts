import { Logger } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import type { LogFormat } from '../../config/env.validation';
import type { RequestContext } from '../http/request-context';

/** Writes the one line per request: method, path, status, duration, request id and handler. */
export class RequestLogger {
  private readonly logger = new Logger('HTTP');

  constructor(private readonly format: LogFormat) {}

  log(req: IncomingMessage, status: number, context: RequestContext): void {
    const durationMs = Number(process.hrtime.bigint() - context.startedAt) / 1e6;
    const url = req.originalUrl ?? req.url ?? '';
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    const method = req.method ?? '-';
    const line =
      this.format === 'json'
        ? {
            method,
            path,
            status,
            durationMs: Math.round(durationMs * 100) / 100,
            requestId: context.id,
            handler: context.handler,
          }
        : `${method} ${path} ${status} ${durationMs.toFixed(2)}ms id=${context.id}${context.handler ? ` ${context.handler}` : ''}`;
    if (status >= 500) this.logger.error(line);
    else if (context.quiet) this.logger.verbose(line);
    else this.logger.log(line);
  }
}

declare module 'node:http' {
  interface IncomingMessage {
    /** Set by Express when routers rewrite `url`. */
    originalUrl?: string;
  }
}
