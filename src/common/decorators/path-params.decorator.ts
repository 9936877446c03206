import { applyDecorators, Param } from '@nestjs/common';
import { ApiParam } from '@nestjs/swagger';
import {
  FIELD_PATH_PATTERN,
  FIELD_PATH_RULE,
  RECORD_ID_PATTERN,
  RECORD_ID_RULE,
  TABLE_NAME_PATTERN,
  TABLE_NAME_RULE,
} from '../../database/names';
import { PatternPipe } from '../pipes/pattern.pipe';

type Kind = 'table' | 'id' | 'field';

const RULES: Record<Kind, { pattern: RegExp; rule: string; example: string; description: string }> =
  {
    table: {
      pattern: TABLE_NAME_PATTERN,
      rule: TABLE_NAME_RULE,
      example: 'users',
      description: 'Table name',
    },
    id: {
      pattern: RECORD_ID_PATTERN,
      rule: RECORD_ID_RULE,
      example: 'u1',
      description: 'Record id',
    },
    field: {
      pattern: FIELD_PATH_PATTERN,
      rule: FIELD_PATH_RULE,
      example: 'user_id',
      description: 'Field (dot path)',
    },
  };

/** A path parameter checked against its pattern (see PatternPipe). */
export function PathParam(name: string, kind: Kind): ParameterDecorator {
  const { pattern, rule } = RULES[kind];
  return Param(name, new PatternPipe(name, pattern, rule));
}

/** Documents path parameters: `[name, kind]` pairs, with pattern, rule and example. */
export function ApiPathParams(
  ...params: [name: string, kind: Kind, description?: string][]
): MethodDecorator {
  return applyDecorators(
    ...params.map(([name, kind, description]) => {
      const { pattern, rule, example, description: fallback } = RULES[kind];
      return ApiParam({
        name,
        required: true,
        description: `${description ?? fallback}: ${rule}`,
        schema: { type: 'string', pattern: pattern.source },
        example,
      });
    }),
  );
}
