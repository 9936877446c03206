import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { SKIP_REQUEST_LOG } from '../decorators/skip-request-log.decorator';
import { requestContextOf } from '../http/request-context';

interface HandlerLogInfo {
  readonly name: string;
  readonly quiet: boolean;
}

/**
 * Names the handler in the request's log line (`RecordsController#create`) and quiets routes
 * marked `@SkipRequestLog()`; it admits every request. The line itself is written when the
 * response finishes (see requestContextMiddleware), so requests that never reach a handler
 * are logged too.
 *
 * The seed design has a logging interceptor do this. It is the first global guard instead:
 * guards see the same handler, run even for requests the throttler refuses, and cost a plain
 * function call, while any global interceptor puts every request through Nest's interceptor
 * chain (an rxjs pipeline and AsyncResource.bind). Measured on GET by id (bench/RESULTS.md):
 * with this as an interceptor, Express 3,730 req/s and Fastify 6,273; as a guard, 5,364 and
 * 17,031.
 */
@Injectable()
export class RequestLogGuard implements CanActivate {
  /** Per handler, worked out on its first request. */
  private readonly handlers = new WeakMap<object, HandlerLogInfo>();

  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): true {
    const requestContext = requestContextOf(context.switchToHttp().getRequest());
    if (requestContext) {
      const { name, quiet } = this.infoOf(context);
      requestContext.handler = name;
      requestContext.quiet = quiet;
    }
    return true;
  }

  private infoOf(context: ExecutionContext): HandlerLogInfo {
    const handler = context.getHandler();
    let info = this.handlers.get(handler);
    if (info === undefined) {
      info = {
        name: `${context.getClass().name}#${handler.name}`,
        quiet:
          this.reflector.getAllAndOverride<boolean | undefined>(SKIP_REQUEST_LOG, [
            handler,
            context.getClass(),
          ]) === true,
      };
      this.handlers.set(handler, info);
    }
    return info;
  }
}
