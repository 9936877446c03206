import { HttpStatus } from '@nestjs/common';
import { json } from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiProblemException } from '../problems/api-problem.exception';

type Next = (error?: unknown) => void;

/** body-parser failure types, as clear problems. Others keep their own status. */
const PARSER_PROBLEMS: Readonly<Record<string, [HttpStatus, string, string]>> = {
  'entity.parse.failed': [
    HttpStatus.BAD_REQUEST,
    'MALFORMED_JSON',
    'The request body is not valid JSON',
  ],
  'entity.too.large': [
    HttpStatus.PAYLOAD_TOO_LARGE,
    'PAYLOAD_TOO_LARGE',
    'The request body is larger than the server accepts',
  ],
  'charset.unsupported': [
    HttpStatus.UNSUPPORTED_MEDIA_TYPE,
    'UNSUPPORTED_CHARSET',
    'The request body charset is not supported; send UTF-8',
  ],
  'encoding.unsupported': [
    HttpStatus.UNSUPPORTED_MEDIA_TYPE,
    'UNSUPPORTED_ENCODING',
    'The request body Content-Encoding is not supported',
  ],
};

/**
 * The JSON body parser: `application/json` and `application/*+json` (merge patches), strict
 * (objects and arrays only), at most `limitBytes`. Its failures become problems with a code.
 */
export function jsonBodyMiddleware(limitBytes: number) {
  const parse = json({
    limit: limitBytes,
    strict: true,
    type: ['application/json', 'application/*+json'],
  });
  return (req: IncomingMessage, res: ServerResponse, next: Next): void => {
    parse(req as never, res as never, (error?: unknown) => {
      if (error === undefined || error === null) return next();
      const type = (error as { type?: unknown }).type;
      const known = typeof type === 'string' ? PARSER_PROBLEMS[type] : undefined;
      if (known === undefined) return next(error);
      const [status, code, detail] = known;
      const suffix =
        status === HttpStatus.PAYLOAD_TOO_LARGE ? ` (${limitBytes} bytes, BODY_LIMIT)` : '';
      next(new ApiProblemException(status, code, detail + suffix));
    });
  };
}
