import type { ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { IncomingMessage } from 'node:http';
import { SkipRequestLog } from '../decorators/skip-request-log.decorator';
import { requestContextOf, startRequestContext } from '../http/request-context';
import { RequestLogGuard } from './request-log.guard';

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

const newRequest = () => ({ headers: {} }) as IncomingMessage;

describe('RequestLogGuard', () => {
  const guard = new RequestLogGuard(new Reflector());

  it('names the handler in the request context and admits the request', () => {
    const request = newRequest();
    startRequestContext(request);

    expect(guard.canActivate(contextFor(RecordsController, 'create', request))).toBe(true);
    expect(requestContextOf(request)).toMatchObject({
      handler: 'RecordsController#create',
      quiet: false,
    });
  });

  it('marks routes decorated with @SkipRequestLog as quiet', () => {
    const request = newRequest();
    startRequestContext(request);

    guard.canActivate(contextFor(HealthController, 'live', request));

    expect(requestContextOf(request)).toMatchObject({
      handler: 'HealthController#live',
      quiet: true,
    });
  });

  it('finds the context behind an adapter request that wraps the raw one (Fastify)', () => {
    const raw = newRequest();
    startRequestContext(raw);

    guard.canActivate(
      contextFor(RecordsController, 'create', { raw } as unknown as IncomingMessage),
    );

    expect(requestContextOf(raw)?.handler).toBe('RecordsController#create');
  });

  it('does nothing without a request context', () => {
    const request = newRequest();

    expect(guard.canActivate(contextFor(RecordsController, 'create', request))).toBe(true);
    expect(requestContextOf(request)).toBeUndefined();
  });
});
