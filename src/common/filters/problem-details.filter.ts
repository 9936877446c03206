import { type ArgumentsHost, Catch, type ExceptionFilter, Logger } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { ApiProblemException } from '../problems/api-problem.exception';
import { INTERNAL_ERROR, PROBLEM_CONTENT_TYPE, toProblem } from '../problems/problem-details';

/** Answers every error as RFC 9457 problem details; logs unexpected faults with their stack. */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  private readonly logger = new Logger(ProblemDetailsFilter.name);

  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const { httpAdapter } = this.adapterHost;
    const http = host.switchToHttp();
    const request: unknown = http.getRequest();
    const response: unknown = http.getResponse();
    const problem = toProblem(exception);
    if (problem.code === INTERNAL_ERROR) {
      this.logger.error(
        exception instanceof Error ? exception.message : String(exception),
        exception instanceof Error ? exception.stack : undefined,
      );
    } else if (problem.status >= 500) {
      this.logger.warn(`${problem.code}: ${problem.detail}`);
    }
    if (httpAdapter.isHeadersSent(response)) {
      httpAdapter.end(response);
      return;
    }
    const url = String(httpAdapter.getRequestUrl(request) ?? '');
    const query = url.indexOf('?');
    problem.instance = query === -1 ? url : url.slice(0, query);
    // Written raw: adapters' reply() would reset the media type of error objects to
    // application/json, and Express's send() would append a charset parameter.
    httpAdapter.status(response, problem.status);
    if (exception instanceof ApiProblemException && exception.headers) {
      for (const [name, value] of Object.entries(exception.headers))
        httpAdapter.setHeader(response, name, value);
    }
    httpAdapter.setHeader(response, 'Content-Type', PROBLEM_CONTENT_TYPE);
    httpAdapter.end(response, JSON.stringify(problem));
  }
}
