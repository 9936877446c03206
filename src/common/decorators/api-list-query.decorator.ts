import { applyDecorators } from '@nestjs/common';
import { ApiHeader, ApiOkResponse, ApiQuery } from '@nestjs/swagger';
import type {
  ReferenceObject,
  SchemaObject,
} from '@nestjs/swagger/dist/interfaces/open-api-spec.interface';
import { JSON_TYPE, NDJSON_TYPE } from '../http/row-stream';
import { IN_LIST_MAX } from '../../database/query/filter';

const FILTER_HELP =
  'Operators: eq, ne, gt, gte, lt, lte, in.(a,b), like / ilike (* is the wildcard), is.null|true|false, ' +
  'and not. before any of them. A bare value means eq. Numbers, true, false and null are typed; ' +
  `"quoted" values are always strings. Dot paths reach nested fields. in lists hold at most ${IN_LIST_MAX} values.`;

/** Documents the paging, sorting and projection parameters shared by lists and joins. */
export function ApiPagingQuery(
  maxLimit: number,
  defaultLimit: number,
  sides = false,
): MethodDecorator {
  const field = (name: string) => (sides ? `left.${name}` : name);
  return applyDecorators(
    ApiQuery({
      name: 'limit',
      required: false,
      description:
        `Rows per page, 1 to ${maxLimit}; or \`all\`: the whole result, streamed ` +
        '(the default with Accept: application/x-ndjson; no Link or X-Total-Count)',
      schema: {
        oneOf: [
          { type: 'integer', minimum: 1, maximum: maxLimit, default: defaultLimit },
          { type: 'string', enum: ['all'] },
        ],
      },
      example: 20,
    }),
    ApiQuery({
      name: 'offset',
      required: false,
      schema: { type: 'integer', minimum: 0, default: 0 },
      description: 'Rows to skip (not with cursor)',
    }),
    ApiQuery({
      name: 'cursor',
      required: false,
      schema: { type: 'string' },
      description: 'Opaque keyset cursor from the Link rel="next" header of the previous page',
    }),
    ApiQuery({
      name: 'count',
      required: false,
      schema: { type: 'string', enum: ['exact', 'none'], default: 'exact' },
      description: 'none skips counting (no X-Total-Count)',
    }),
    ApiQuery({
      name: 'sort',
      required: false,
      schema: { type: 'string' },
      example: sides ? 'left.age,-right.total_price' : '-age,full_name',
      description:
        'Comma-separated fields, - for descending; ties broken by id; missing values last',
    }),
    ApiQuery({
      name: 'fields',
      required: false,
      schema: { type: 'string' },
      example: sides ? 'left.email,right.total_price' : 'id,email,address.city',
      description: 'Only these fields (dot paths)' + (sides ? ', each prefixed with its side' : ''),
    }),
    ApiHeader({
      name: 'X-Request-Id',
      required: false,
      description: 'Echoed back; generated when absent',
    }),
    ...(sides
      ? []
      : [
          ApiQuery({
            name: 'or',
            required: false,
            schema: { type: 'string' },
            example: '(age.lt.18,age.gt.65)',
            description: 'Any of the conditions (path.operator.value); and(...) / or(...) nest',
          }),
        ]),
    ApiQuery({
      name: 'filters',
      required: false,
      style: 'form',
      explode: true,
      schema: { type: 'object', additionalProperties: { type: 'string' } },
      example: sides
        ? {
            [field('age')]: 'gte.18',
            'right.total_price': 'gt.100',
            'left.or': '(status.eq.new,status.eq.paid)',
          }
        : {
            age: 'gte.18',
            status: 'in.(new,paid)',
            email: 'ilike.*@example.com',
            'address.city': 'eq.Paris',
          },
      description:
        (sides
          ? 'Filters per side: left.<field>=operator.value, right.<field>=…, left.or=(…). '
          : 'Filters: <field>=operator.value. ') + FILTER_HELP,
    }),
  );
}

/** Response headers of a page. */
export const PAGE_HEADERS = {
  'X-Total-Count': {
    description: 'Matches in all (absent with count=none)',
    schema: { type: 'integer' },
  },
  Link: {
    description: '<…?cursor=…>; rel="next" when another page follows',
    schema: { type: 'string' },
  },
  'X-Query-Plan': {
    description:
      'How the rows were found: scan, pk or index(<field>); joins name each side and the join',
    schema: { type: 'string' },
  },
};

/**
 * Documents a list or join answer: a JSON array of `row`s, or with Accept:
 * application/x-ndjson one row per line, both streamed for whole results.
 */
export function ApiRowsResponse(row: SchemaObject | ReferenceObject): MethodDecorator {
  return ApiOkResponse({
    description:
      'The rows: a JSON array, or NDJSON (one JSON row per line) when the Accept header asks for ' +
      'application/x-ndjson. Whole results (limit=all) are streamed as they are read.',
    headers: PAGE_HEADERS,
    content: {
      [JSON_TYPE]: { schema: { type: 'array', items: row } },
      [NDJSON_TYPE]: {
        schema: { type: 'string', description: 'One JSON row per line, each ending in \\n' },
      },
    },
  });
}
