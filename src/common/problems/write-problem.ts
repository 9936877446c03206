import { STATUS_CODES, type ServerResponse } from 'node:http';
import { PROBLEM_CONTENT_TYPE } from './problem-details';

/** Answers a problem straight on the Node response, for refusals made before Nest routes. */
export function writeProblem(
  res: ServerResponse,
  status: number,
  code: string,
  detail: string,
): void {
  const body = JSON.stringify({
    type: `urn:memdb:problem:${code.toLowerCase().replaceAll('_', '-')}`,
    title: STATUS_CODES[status] ?? 'Error',
    status,
    detail,
    code,
  });
  res.statusCode = status;
  res.setHeader('Content-Type', PROBLEM_CONTENT_TYPE);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}
