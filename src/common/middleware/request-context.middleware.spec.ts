import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RequestLogger } from '../logging/request-logger';
import { requestContextMiddleware } from './request-context.middleware';

function fakeResponse() {
  const res = new EventEmitter() as EventEmitter & {
    headers: Record<string, string>;
    statusCode: number;
    writableFinished: boolean;
  };
  res.headers = {};
  res.statusCode = 200;
  res.writableFinished = true;
  return Object.assign(res, {
    setHeader: (name: string, value: string) => (res.headers[name] = value),
  });
}

describe('requestContextMiddleware', () => {
  it('echoes a plain X-Request-Id, calls next, and logs one line when the response finishes', () => {
    const logger = new RequestLogger('text');
    const log = jest.spyOn(logger, 'log').mockImplementation(() => undefined);
    const req = {
      headers: { 'x-request-id': 'abc-1' },
      method: 'GET',
      url: '/x',
    } as unknown as IncomingMessage;
    const res = fakeResponse();
    const next = jest.fn();

    requestContextMiddleware(logger)(req, res as unknown as ServerResponse, next);
    expect(next).toHaveBeenCalledTimes(1);
    expect(res.headers['x-request-id']).toBe('abc-1');
    expect(log).not.toHaveBeenCalled();

    res.statusCode = 404;
    res.emit('close');
    res.emit('close');

    expect(log).toHaveBeenCalledTimes(1);
    expect(log).toHaveBeenCalledWith(req, 404, expect.objectContaining({ id: 'abc-1' }));
  });

  it('logs 499 when the client closes before the response is complete', () => {
    const logger = new RequestLogger('text');
    const log = jest.spyOn(logger, 'log').mockImplementation(() => undefined);
    const req = { headers: {}, method: 'POST', url: '/x' } as unknown as IncomingMessage;
    const res = fakeResponse();
    res.writableFinished = false;

    requestContextMiddleware(logger)(req, res as unknown as ServerResponse, () => undefined);
    res.emit('close');

    expect(log).toHaveBeenCalledWith(req, 499, expect.any(Object));
  });

  it.each([['has space'], ['x'.repeat(129)], ['line\nbreak']])(
    'replaces the unsafe request id %j',
    (sent) => {
      const res = fakeResponse();

      requestContextMiddleware(new RequestLogger('text'))(
        { headers: { 'x-request-id': sent } } as unknown as IncomingMessage,
        res as unknown as ServerResponse,
        () => undefined,
      );

      expect(res.headers['x-request-id']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4/);
    },
  );
});

describe('RequestLogger', () => {
  const context = {
    id: 'r1',
    startedAt: process.hrtime.bigint(),
    handler: 'RecordsController#get',
  };
  const req = { method: 'GET', url: '/api/v1/data/t/1?secret=x' } as IncomingMessage;

  it('writes a text line without the query string', () => {
    const logger = new RequestLogger('text');
    const log = jest.spyOn(logger['logger'], 'log').mockImplementation(() => undefined);

    logger.log(req, 200, context);

    expect(log).toHaveBeenCalledWith(
      expect.stringMatching(
        /^GET \/api\/v1\/data\/t\/1 200 \d+\.\d{2}ms id=r1 RecordsController#get$/,
      ),
    );
  });

  it('writes JSON fields, and server errors at error level', () => {
    const logger = new RequestLogger('json');
    const error = jest.spyOn(logger['logger'], 'error').mockImplementation(() => undefined);

    logger.log(req, 500, context);

    expect(error).toHaveBeenCalledWith({
      method: 'GET',
      path: '/api/v1/data/t/1',
      status: 500,
      durationMs: expect.any(Number),
      requestId: 'r1',
      handler: 'RecordsController#get',
    });
  });

  it('logs quiet requests at verbose level', () => {
    const logger = new RequestLogger('text');
    const verbose = jest.spyOn(logger['logger'], 'verbose').mockImplementation(() => undefined);

    logger.log(req, 200, { ...context, quiet: true });

    expect(verbose).toHaveBeenCalledTimes(1);
  });
});
