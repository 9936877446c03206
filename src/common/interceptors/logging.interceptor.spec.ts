import type { CallHandler, ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { of } from 'rxjs';
import type { IncomingMessage } from 'node:http';
import { SkipRequestLog } from '../decorators/skip-request-log.decorator';
import { requestContextOf, startRequestContext } from '../http/request-context';
import { LoggingInterceptor } from './logging.interceptor';

class RecordsController {
  create(): void {}
}
@SkipRequestLog()
class HealthController {
  live(): void {}
}

function contextFor(
  controller: { prototype: object },
  handler: string,
  request: IncomingMessage,
): ExecutionContext {
  return {
    switchToHttp: () => ({ getRequest: () => request }),
    getClass: () => controller,
    getHandler: () => (controller.prototype as Record<string, () => void>)[handler],
  } as unknown as ExecutionContext;
}

const next: CallHandler = { handle: () => of('result') };
const newRequest = () => ({ headers: {} }) as IncomingMessage;

describe('LoggingInterceptor', () => {
  const interceptor = new LoggingInterceptor(new Reflector());

  it('names the handler in the request context and passes the result through', (done) => {
    const request = newRequest();
    startRequestContext(request);

    interceptor
      .intercept(contextFor(RecordsController, 'create', request), next)
      .subscribe((value) => {
        expect(value).toBe('result');
        expect(requestContextOf(request)).toMatchObject({
          handler: 'RecordsController#create',
          quiet: undefined,
        });
        done();
      });
  });

  it('marks routes decorated with @SkipRequestLog as quiet', () => {
    const request = newRequest();
    startRequestContext(request);

    interceptor.intercept(contextFor(HealthController, 'live', request), next);

    expect(requestContextOf(request)).toMatchObject({
      handler: 'HealthController#live',
      quiet: true,
    });
  });

  it('finds the context behind an adapter request that wraps the raw one (Fastify)', () => {
    const raw = newRequest();
    startRequestContext(raw);

    interceptor.intercept(
      contextFor(RecordsController, 'create', { raw } as unknown as IncomingMessage),
      next,
    );

    expect(requestContextOf(raw)?.handler).toBe('RecordsController#create');
  });

  it('does nothing without a request context', () => {
    const request = newRequest();

    expect(() =>
      interceptor.intercept(contextFor(RecordsController, 'create', request), next),
    ).not.toThrow();
    expect(requestContextOf(request)).toBeUndefined();
  });
});
