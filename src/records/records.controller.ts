import {
  Body,
  Controller,
  Delete,
  Get,
  Headers,
  HttpCode,
  HttpStatus,
  Patch,
  Post,
  Put,
  Query,
  Res,
  StreamableFile,
} from '@nestjs/common';
import {
  ApiBody,
  ApiConsumes,
  ApiCreatedResponse,
  ApiExtraModels,
  ApiHeader,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiResponse,
  ApiTags,
  getSchemaPath,
} from '@nestjs/swagger';
import { ApiPagingQuery, ApiRowsResponse } from '../common/decorators/api-list-query.decorator';
import { ApiProblems } from '../common/decorators/api-problems.decorator';
import { ApiPathParams, PathParam } from '../common/decorators/path-params.decorator';
import { formatEtag, ifNoneMatchHits, parseIfMatch } from '../common/http/etag';
import { addVary, type HeaderSink } from '../common/http/header-sink';
import { JSON_TYPE, negotiateRowType, rowStream, type RowType } from '../common/http/row-stream';
import { nextPageLink } from '../common/http/link';
import { seqTo } from '../common/http/sequence';
import { JsonObjectPipe } from '../common/pipes/json-object.pipe';
import type { QueryResult } from '../database/query-executor';
import type { ListQuery, PagingParams, RawQuery } from '../database/query/query-params';
import type { JsonObject, StoredRecord } from '../database/record.types';
import { versionOf } from '../database/record-version';
import { StorageService } from '../database/storage.service';
import { Idempotent } from '../idempotency/idempotent.decorator';
import { LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX } from './dto/list-records-query.dto';
import { OrderDto } from './dto/order.dto';
import { RecordDto } from './dto/record.dto';
import { UserDto } from './dto/user.dto';
import { ListQueryPipe } from './pipes/list-query.pipe';
import { RecordOrBatchPipe } from './pipes/record-or-batch.pipe';

const ONE_RECORD = {
  anyOf: [
    { $ref: getSchemaPath(UserDto) },
    { $ref: getSchemaPath(OrderDto) },
    { type: 'object', additionalProperties: true },
  ],
};
const RECORD_BODY = {
  description:
    'A JSON object, or an array of up to BULK_MAX objects written all or nothing. `users` and `orders` ' +
    'are typed (see UserDto and OrderDto: no coercion, no unknown fields); any other table accepts any ' +
    'object. `id` (a string) is optional; `created_at` and `updated_at` are set by the server and ' +
    'ignored in bodies.',
  schema: { anyOf: [...ONE_RECORD.anyOf, { type: 'array', items: ONE_RECORD }] },
  examples: {
    user: { value: { id: 'u1', email: 'ada@example.com', full_name: 'Ada Lovelace', age: 36 } },
    order: {
      value: {
        user_id: 'u1',
        product_name: 'Analytical Engine',
        quantity: 1,
        total_price: 199.5,
        order_date: '2026-11-25T20:00:00Z',
      },
    },
    anything: { value: { title: 'Notes', tags: ['a', 'b'], nested: { ok: true } } },
    bulk: {
      value: [
        { id: 'n1', title: 'first' },
        { id: 'n2', title: 'second' },
      ],
    },
  },
};
const REPLACE_BODY = {
  ...RECORD_BODY,
  schema: ONE_RECORD,
  examples: { user: RECORD_BODY.examples.user },
};
const RECORD_SCHEMA = {
  allOf: [{ $ref: getSchemaPath(RecordDto) }, { type: 'object', additionalProperties: true }],
};
const ETAG_HEADER = {
  ETag: { description: 'Strong entity tag of the record', schema: { type: 'string' } },
};
const IF_MATCH = {
  name: 'If-Match',
  required: false,
  description:
    'Write only if the record\'s ETag is one of these (or "*": the record exists); otherwise 412',
};

export function recordLocation(table: string, id: string): string {
  return `/api/v1/data/${table}/${encodeURIComponent(id)}`;
}

/** Sets the page headers: X-Total-Count, Link rel="next", X-Query-Plan. */
export function sendPageHeaders(
  res: HeaderSink,
  path: string,
  raw: RawQuery,
  result: QueryResult<unknown>,
): void {
  if (result.total !== undefined) res.header('X-Total-Count', String(result.total));
  if (result.nextCursor !== undefined)
    res.header('Link', nextPageLink(path, raw, result.nextCursor));
  res.header('X-Query-Plan', result.plan);
}

/**
 * Whether to answer with the whole result, streamed: `limit=all`, or NDJSON without a limit.
 * An NDJSON client without a limit is reading a result through, not paging it.
 */
export function wantsWholeResult(raw: RawQuery, query: PagingParams, type: RowType): boolean {
  return (
    query.limit === Number.POSITIVE_INFINITY || (type !== JSON_TYPE && raw.limit === undefined)
  );
}

@ApiTags('records')
@ApiExtraModels(RecordDto, UserDto, OrderDto)
@ApiProblems(429)
@Controller('api/v1/data/:table')
export class RecordsController {
  constructor(private readonly storage: StorageService) {}

  @Post()
  @Idempotent()
  @ApiPathParams(['table', 'table'])
  @ApiOperation({
    summary:
      'Create a record, or several at once (the table comes into being with its first record)',
  })
  @ApiBody(RECORD_BODY)
  @ApiCreatedResponse({
    description: 'The stored record (with Location and ETag), or the stored array for a bulk write',
    schema: { oneOf: [RECORD_SCHEMA, { type: 'array', items: RECORD_SCHEMA }] },
    headers: {
      Location: { description: 'URL of the new record', schema: { type: 'string' } },
      ...ETAG_HEADER,
    },
  })
  @ApiProblems(400, 409, 413, 503)
  async create(
    @PathParam('table', 'table') table: string,
    @Body(RecordOrBatchPipe) body: JsonObject | JsonObject[],
    @Res({ passthrough: true }) res: HeaderSink,
  ): Promise<StoredRecord | StoredRecord[]> {
    if (Array.isArray(body)) return this.storage.createMany(table, body, seqTo(res));
    const record = await this.storage.create(table, body, seqTo(res));
    res.header('Location', recordLocation(table, record.id));
    res.header('ETag', formatEtag(versionOf(record)));
    return record;
  }

  @Get()
  @ApiPathParams(['table', 'table'])
  @ApiOperation({
    summary: 'List records: filter, sort, page (offset or keyset cursor) and project',
  })
  @ApiPagingQuery(LIST_LIMIT_MAX, LIST_LIMIT_DEFAULT)
  @ApiRowsResponse(RECORD_SCHEMA)
  @ApiProblems(400, 404, 422)
  async list(
    @PathParam('table', 'table') table: string,
    @Query() raw: RawQuery,
    @Query(ListQueryPipe) query: ListQuery,
    @Headers('accept') accept: string | undefined,
    @Res({ passthrough: true }) res: HeaderSink,
  ): Promise<readonly unknown[] | StreamableFile> {
    const type = negotiateRowType(accept);
    addVary(res, 'Accept');
    if (wantsWholeResult(raw, query, type)) {
      const whole = await this.storage.listAll(table, query, seqTo(res));
      res.header('X-Query-Plan', whole.plan);
      return rowStream(whole.rows, type, { yielder: whole.yielder, close: whole.close });
    }
    const result = await this.storage.list(table, query, seqTo(res));
    sendPageHeaders(res, `/api/v1/data/${table}`, raw, result);
    return type === JSON_TYPE ? result.items : rowStream(result.items, type);
  }

  @Get(':id')
  @ApiPathParams(['table', 'table'], ['id', 'id'])
  @ApiOperation({ summary: 'Read a record' })
  @ApiHeader({
    name: 'If-None-Match',
    required: false,
    description: 'ETag(s) the client holds; 304 when one is current',
  })
  @ApiOkResponse({ schema: RECORD_SCHEMA, headers: ETAG_HEADER })
  @ApiResponse({ status: 304, description: 'Not modified: If-None-Match names the current ETag' })
  @ApiProblems(400, 404)
  get(
    @PathParam('table', 'table') table: string,
    @PathParam('id', 'id') id: string,
    @Headers('if-none-match') ifNoneMatch: string | undefined,
    @Res({ passthrough: true }) res: HeaderSink,
  ): StoredRecord | undefined {
    const record = this.storage.get(table, id, seqTo(res));
    const version = versionOf(record);
    res.header('ETag', formatEtag(version));
    if (!ifNoneMatchHits(ifNoneMatch, version)) return record;
    res.status(HttpStatus.NOT_MODIFIED);
    return undefined;
  }

  @Put(':id')
  @Idempotent()
  @ApiPathParams(['table', 'table'], ['id', 'id'])
  @ApiOperation({ summary: "Replace a record's fields (id and created_at are kept)" })
  @ApiHeader(IF_MATCH)
  @ApiBody(REPLACE_BODY)
  @ApiOkResponse({ schema: RECORD_SCHEMA, headers: ETAG_HEADER })
  @ApiProblems(400, 404, 409, 412, 413, 503)
  async replace(
    @PathParam('table', 'table') table: string,
    @PathParam('id', 'id') id: string,
    @Body(JsonObjectPipe) body: JsonObject,
    @Headers('if-match') ifMatch: string | undefined,
    @Res({ passthrough: true }) res: HeaderSink,
  ): Promise<StoredRecord> {
    const record = await this.storage.replace(
      table,
      id,
      body,
      { ifMatch: parseIfMatch(ifMatch) },
      seqTo(res),
    );
    res.header('ETag', formatEtag(versionOf(record)));
    return record;
  }

  @Patch(':id')
  @Idempotent()
  @ApiPathParams(['table', 'table'], ['id', 'id'])
  @ApiOperation({ summary: 'Apply an RFC 7396 JSON merge patch (null removes a field)' })
  @ApiHeader(IF_MATCH)
  @ApiConsumes('application/merge-patch+json', 'application/json')
  @ApiBody({
    schema: { type: 'object', additionalProperties: true },
    examples: { patch: { value: { age: 37, nickname: null } } },
  })
  @ApiOkResponse({ schema: RECORD_SCHEMA, headers: ETAG_HEADER })
  @ApiProblems(400, 404, 409, 412, 413, 503)
  async patch(
    @PathParam('table', 'table') table: string,
    @PathParam('id', 'id') id: string,
    @Body(JsonObjectPipe) patch: JsonObject,
    @Headers('if-match') ifMatch: string | undefined,
    @Res({ passthrough: true }) res: HeaderSink,
  ): Promise<StoredRecord> {
    const record = await this.storage.patch(
      table,
      id,
      patch,
      { ifMatch: parseIfMatch(ifMatch) },
      seqTo(res),
    );
    res.header('ETag', formatEtag(versionOf(record)));
    return record;
  }

  @Delete(':id')
  @Idempotent()
  @ApiPathParams(['table', 'table'], ['id', 'id'])
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({ summary: 'Delete a record' })
  @ApiHeader(IF_MATCH)
  @ApiNoContentResponse({ description: 'Deleted' })
  @ApiProblems(400, 404, 412, 503)
  async remove(
    @PathParam('table', 'table') table: string,
    @PathParam('id', 'id') id: string,
    @Headers('if-match') ifMatch: string | undefined,
    @Res({ passthrough: true }) res: HeaderSink,
  ): Promise<void> {
    await this.storage.delete(table, id, { ifMatch: parseIfMatch(ifMatch) }, seqTo(res));
  }
}
