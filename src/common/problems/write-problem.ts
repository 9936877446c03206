import { STATUS_CODES, type ServerResponse } from 'node:http';
import { PROBLEM_CONTENT_TYPE, problemType } from './problem-details';

/** A problem's JSON, for answers written outside Nest (before routing, or on a raw socket). */
export function problemBody(status: number, code: string, detail: string): string {
  return JSON.stringify({
    type: problemType(code),
    title: STATUS_CODES[status] ?? 'Error',
    status,
    detail,
    code,
  });
}

/** Answers a problem straight on the Node response, for refusals made before Nest routes. */
export function writeProblem(
  res: ServerResponse,
  status: number,
  code: string,
  detail: string,
): void {
  const body = problemBody(status, code, detail);
  res.statusCode = status;
  res.setHeader('Content-Type', PROBLEM_CONTENT_TYPE);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}
