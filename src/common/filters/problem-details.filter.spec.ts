import {
  BadRequestException,
  type ArgumentsHost,
  HttpStatus,
  NotFoundException,
} from '@nestjs/common';
import type { HttpAdapterHost } from '@nestjs/core';
import { ThrottlerException } from '@nestjs/throttler';
import {
  DuplicateRecordError,
  LockTimeoutError,
  SnapshotTooOldError,
  RecordValidationError,
} from '../../database/database.errors';
import { RequestValidationException } from '../problems/api-problem.exception';
import { ProblemDetailsFilter } from './problem-details.filter';

function setup(headersSent = false) {
  const adapter = {
    isHeadersSent: jest.fn(() => headersSent),
    getRequestUrl: jest.fn(() => '/api/v1/data/users?limit=5'),
    setHeader: jest.fn(),
    status: jest.fn(),
    end: jest.fn(),
  };
  const filter = new ProblemDetailsFilter({ httpAdapter: adapter } as unknown as HttpAdapterHost);
  jest.spyOn(filter['logger'], 'error').mockImplementation(() => undefined);
  jest.spyOn(filter['logger'], 'warn').mockImplementation(() => undefined);
  const host = {
    switchToHttp: () => ({ getRequest: () => ({}), getResponse: () => ({}) }),
  } as unknown as ArgumentsHost;
  const sent = () => {
    const [, status] = adapter.status.mock.calls[0] as [unknown, number];
    const [, body] = adapter.end.mock.calls[0] as [unknown, string];
    return { status, body: JSON.parse(body) };
  };
  return { adapter, filter, host, sent };
}

describe('ProblemDetailsFilter', () => {
  it('answers a domain error with its status, code and application/problem+json', () => {
    const { adapter, filter, host, sent } = setup();

    filter.catch(new DuplicateRecordError('users', 'u1'), host);

    expect(adapter.setHeader).toHaveBeenCalledWith({}, 'Content-Type', 'application/problem+json');
    expect(sent()).toEqual({
      status: 409,
      body: {
        type: 'urn:memdb:problem:duplicate-record',
        title: 'Conflict',
        status: 409,
        detail: "Record 'u1' already exists in table 'users'",
        code: 'DUPLICATE_RECORD',
        instance: '/api/v1/data/users',
      },
    });
  });

  it.each([
    [new RecordValidationError('users', [{ field: 'age', message: 'bad' }]), 400, 'RECORD_INVALID'],
    [
      new RequestValidationException([{ field: 'limit', message: 'bad' }]),
      400,
      'VALIDATION_FAILED',
    ],
    [new LockTimeoutError('users', 5), 503, 'LOCK_TIMEOUT'],
    [new SnapshotTooOldError(1048576), 503, 'SNAPSHOT_TOO_OLD'],
    [new NotFoundException('Cannot GET /x'), 404, 'NOT_FOUND'],
    [new BadRequestException('nope'), 400, 'BAD_REQUEST'],
    [new ThrottlerException(), 429, 'TOO_MANY_REQUESTS'],
  ])('maps %p to %i %s', (error, status, code) => {
    const { filter, host, sent } = setup();

    filter.catch(error, host);

    expect(sent().status).toBe(status);
    expect(sent().body).toMatchObject({ status, code });
  });

  it('lists each bad field for validation errors', () => {
    const { filter, host, sent } = setup();

    filter.catch(
      new RecordValidationError('users', [{ field: 'age', message: 'age must be an integer' }]),
      host,
    );

    expect(sent().body.errors).toEqual([{ field: 'age', message: 'age must be an integer' }]);
  });

  it('hides the cause of unknown errors behind a generic 500', () => {
    const { filter, host, sent } = setup();

    filter.catch(new TypeError('secret internals at /srv/app.js:1'), host);

    expect(filter['logger'].error).toHaveBeenCalledWith(
      'secret internals at /srv/app.js:1',
      expect.any(String),
    );
    expect(sent()).toEqual({
      status: HttpStatus.INTERNAL_SERVER_ERROR,
      body: expect.objectContaining({
        code: 'INTERNAL_ERROR',
        detail: expect.not.stringContaining('secret'),
      }),
    });
  });

  it('passes through 4xx errors that carry an exposed status (http-errors)', () => {
    const { filter, host, sent } = setup();

    filter.catch(Object.assign(new Error('request aborted'), { status: 400, expose: true }), host);

    expect(sent().body).toMatchObject({
      status: 400,
      code: 'BAD_REQUEST',
      detail: 'request aborted',
    });
  });

  it('only ends the response when headers were already sent', () => {
    const { adapter, filter, host } = setup(true);

    filter.catch(new NotFoundException(), host);

    expect(adapter.end).toHaveBeenCalledWith({});
    expect(adapter.status).not.toHaveBeenCalled();
  });
});
