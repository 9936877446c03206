import { STATUS_CODES } from 'node:http';
import { applyDecorators } from '@nestjs/common';
import { ApiExtraModels, ApiResponse, getSchemaPath } from '@nestjs/swagger';
import { PROBLEM_CONTENT_TYPE } from '../problems/problem-details';
import { ProblemDetailsDto } from '../problems/problem-details.dto';

/** Documents error responses as problem details; 429 also documents `Retry-After`. */
export function ApiProblems(...statuses: number[]): MethodDecorator & ClassDecorator {
  return applyDecorators(
    ApiExtraModels(ProblemDetailsDto),
    ...statuses.map((status) =>
      ApiResponse({
        status,
        description: STATUS_CODES[status],
        content: { [PROBLEM_CONTENT_TYPE]: { schema: { $ref: getSchemaPath(ProblemDetailsDto) } } },
        headers:
          status === 429
            ? {
                'Retry-After': {
                  description: 'Seconds until the client may retry',
                  schema: { type: 'integer' },
                },
              }
            : undefined,
      }),
    ),
  );
}
