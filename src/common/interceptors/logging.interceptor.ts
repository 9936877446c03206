import {
  type CallHandler,
  type ExecutionContext,
  Injectable,
  type NestInterceptor,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Observable } from 'rxjs';
import { SKIP_REQUEST_LOG } from '../decorators/skip-request-log.decorator';
import { requestContextOf } from '../http/request-context';

/**
 * Names the handler in the request's log line (`RecordsController#create`) and quiets routes
 * marked `@SkipRequestLog()`. The line itself is written when the response finishes (see
 * requestContextMiddleware), so requests that never reach a handler are logged too.
 */
@Injectable()
export class LoggingInterceptor implements NestInterceptor {
  constructor(private readonly reflector: Reflector) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const requestContext = requestContextOf(context.switchToHttp().getRequest());
    if (requestContext) {
      requestContext.handler = `${context.getClass().name}#${context.getHandler().name}`;
      requestContext.quiet = this.reflector.getAllAndOverride<boolean>(SKIP_REQUEST_LOG, [
        context.getHandler(),
        context.getClass(),
      ]);
    }
    return next.handle();
  }
}
