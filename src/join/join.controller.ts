import { Controller, Get, Headers, Query, Res, StreamableFile } from '@nestjs/common';
import { ApiExtraModels, ApiOperation, ApiQuery, ApiTags, getSchemaPath } from '@nestjs/swagger';
import { ApiPagingQuery, ApiRowsResponse } from '../common/decorators/api-list-query.decorator';
import { ApiProblems } from '../common/decorators/api-problems.decorator';
import { ApiPathParams, PathParam } from '../common/decorators/path-params.decorator';
import { addVary, type HeaderSink } from '../common/http/header-sink';
import {
  JSON_TYPE,
  joinRowSerializer,
  negotiateRowType,
  rowStream,
} from '../common/http/row-stream';
import { JOIN_TYPES } from '../database/hash-join';
import { FIELD_PATH_PATTERN } from '../database/names';
import { parseFieldPath } from '../database/query/field-path';
import type { JoinQuery, RawQuery } from '../database/query/query-params';
import { seqTo } from '../common/http/sequence';
import { StorageService } from '../database/storage.service';
import { sendPageHeaders, wantsWholeResult } from '../records/records.controller';
import { JOIN_LIMIT_DEFAULT, JOIN_LIMIT_MAX } from './dto/join-query.dto';
import { JoinRowDto } from './dto/join-row.dto';
import { JoinQueryPipe } from './pipes/join-query.pipe';

@ApiTags('join')
@ApiExtraModels(JoinRowDto)
@Controller('api/v1/join')
export class JoinController {
  constructor(private readonly storage: StorageService) {}

  @Get(':left/:right/:key')
  @ApiPathParams(
    ['left', 'table', 'Left table'],
    ['right', 'table', 'Right table'],
    ['key', 'field', 'Join field, on both sides unless leftKey or rightKey is given'],
  )
  @ApiOperation({
    summary: 'Hash-join two tables where left[leftKey] === right[rightKey]',
    description:
      'Keys match by strict equality of scalars (3 does not match "3"); null or missing keys never match. ' +
      'Default order: left insertion order, then right (right joins: the mirror). Filters apply to each side ' +
      'before the join. Example: /api/v1/join/users/orders/user_id?leftKey=id&left.age=gte.18',
  })
  @ApiQuery({
    name: 'leftKey',
    required: false,
    schema: { type: 'string', pattern: FIELD_PATH_PATTERN.source },
    example: 'id',
    description: 'Field of the left table (default: key)',
  })
  @ApiQuery({
    name: 'rightKey',
    required: false,
    schema: { type: 'string', pattern: FIELD_PATH_PATTERN.source },
    example: 'user_id',
    description: 'Field of the right table (default: key)',
  })
  @ApiQuery({
    name: 'type',
    required: false,
    schema: { type: 'string', enum: [...JOIN_TYPES], default: 'inner' },
    description:
      'inner: matched pairs; left / right: also unmatched records of that side, the other side null; ' +
      'full: both; semi: left records with a match; anti: left records without one (semi and anti rows have no right)',
  })
  @ApiPagingQuery(JOIN_LIMIT_MAX, JOIN_LIMIT_DEFAULT, true)
  @ApiRowsResponse({ $ref: getSchemaPath(JoinRowDto) })
  @ApiProblems(400, 404, 422, 429)
  async join(
    @PathParam('left', 'table') left: string,
    @PathParam('right', 'table') right: string,
    @PathParam('key', 'field') key: string,
    @Query() raw: RawQuery,
    @Query(JoinQueryPipe) query: JoinQuery,
    @Headers('accept') accept: string | undefined,
    @Res({ passthrough: true }) res: HeaderSink,
  ): Promise<readonly unknown[] | StreamableFile> {
    const keyPath = parseFieldPath(key, 'key');
    const tables = {
      left,
      right,
      leftKey: query.leftKey ?? keyPath,
      rightKey: query.rightKey ?? keyPath,
    };
    const type = negotiateRowType(accept);
    addVary(res, 'Accept');
    if (wantsWholeResult(raw, query, type)) {
      const whole = await this.storage.joinAll(tables, query, seqTo(res));
      res.header('X-Query-Plan', whole.plan);
      return rowStream(whole.rows, type, {
        yielder: whole.yielder,
        serialize: joinRowSerializer(),
        close: whole.close,
      });
    }
    const result = await this.storage.join(tables, query, seqTo(res));
    sendPageHeaders(res, `/api/v1/join/${left}/${right}/${key}`, raw, result);
    return type === JSON_TYPE
      ? result.items
      : rowStream(result.items, type, { serialize: joinRowSerializer() });
  }
}
