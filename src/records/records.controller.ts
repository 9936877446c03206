import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  HttpStatus,
  Param,
  Patch,
  Post,
  Put,
  Query,
  Res,
} from '@nestjs/common';
import {
  ApiBody,
  ApiConsumes,
  ApiCreatedResponse,
  ApiExtraModels,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  getSchemaPath,
} from '@nestjs/swagger';
import { ApiProblems } from '../common/decorators/api-problems.decorator';
import type { HeaderSink } from '../common/http/header-sink';
import { JsonObjectPipe } from '../common/pipes/json-object.pipe';
import type { JsonObject, StoredRecord } from '../database/record.types';
import { StorageService } from '../database/storage.service';
import { ListRecordsQueryDto } from './dto/list-records-query.dto';
import { RecordParamsDto, TableParamsDto } from './dto/record-params.dto';
import { RecordDto } from './dto/record.dto';
import { OrderDto } from './dto/order.dto';
import { UserDto } from './dto/user.dto';

const RECORD_BODY = {
  description:
    'A JSON object. `users` and `orders` are typed (see UserDto and OrderDto: no coercion, no unknown ' +
    'fields); any other table accepts any object. `id` (a string) is optional; `created_at` and ' +
    '`updated_at` are set by the server and ignored in bodies.',
  schema: {
    oneOf: [
      { $ref: getSchemaPath(UserDto) },
      { $ref: getSchemaPath(OrderDto) },
      { type: 'object', additionalProperties: true },
    ],
  },
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
  },
};
const RECORD_RESPONSE = {
  schema: {
    allOf: [{ $ref: getSchemaPath(RecordDto) }, { type: 'object', additionalProperties: true }],
  },
};

export function recordLocation(table: string, id: string): string {
  return `/api/v1/data/${table}/${encodeURIComponent(id)}`;
}

@ApiTags('records')
@ApiExtraModels(RecordDto, UserDto, OrderDto)
@ApiProblems(429)
@Controller('api/v1/data/:table')
export class RecordsController {
  constructor(private readonly storage: StorageService) {}

  @Post()
  @ApiOperation({ summary: 'Create a record (the table comes into being with its first record)' })
  @ApiBody(RECORD_BODY)
  @ApiCreatedResponse({
    ...RECORD_RESPONSE,
    description: 'The stored record',
    headers: { Location: { description: 'URL of the new record', schema: { type: 'string' } } },
  })
  @ApiProblems(400, 409, 413, 503)
  async create(
    @Param() { table }: TableParamsDto,
    @Body(JsonObjectPipe) body: JsonObject,
    @Res({ passthrough: true }) res: HeaderSink,
  ): Promise<StoredRecord> {
    const record = await this.storage.create(table, body);
    res.header('Location', recordLocation(table, record.id));
    return record;
  }

  @Get()
  @ApiOperation({ summary: 'List records in insertion order' })
  @ApiOkResponse({
    schema: { type: 'array', items: RECORD_RESPONSE.schema },
    headers: {
      'X-Total-Count': { description: 'Records in the table', schema: { type: 'integer' } },
    },
  })
  @ApiProblems(400, 404)
  list(
    @Param() { table }: TableParamsDto,
    @Query() { limit, offset }: ListRecordsQueryDto,
    @Res({ passthrough: true }) res: HeaderSink,
  ): readonly StoredRecord[] {
    const { items, total } = this.storage.list(table, { limit, offset });
    res.header('X-Total-Count', String(total));
    return items;
  }

  @Get(':id')
  @ApiOperation({ summary: 'Read a record' })
  @ApiOkResponse(RECORD_RESPONSE)
  @ApiProblems(400, 404)
  get(@Param() { table, id }: RecordParamsDto): StoredRecord {
    return this.storage.get(table, id);
  }

  @Put(':id')
  @ApiOperation({ summary: "Replace a record's fields (id and created_at are kept)" })
  @ApiBody(RECORD_BODY)
  @ApiOkResponse(RECORD_RESPONSE)
  @ApiProblems(400, 404, 413, 503)
  replace(
    @Param() { table, id }: RecordParamsDto,
    @Body(JsonObjectPipe) body: JsonObject,
  ): Promise<StoredRecord> {
    return this.storage.replace(table, id, body);
  }

  @Patch(':id')
  @ApiOperation({ summary: 'Apply an RFC 7396 JSON merge patch (null removes a field)' })
  @ApiConsumes('application/merge-patch+json', 'application/json')
  @ApiBody({
    schema: { type: 'object', additionalProperties: true },
    examples: { patch: { value: { age: 37, nickname: null } } },
  })
  @ApiOkResponse(RECORD_RESPONSE)
  @ApiProblems(400, 404, 413, 503)
  patch(
    @Param() { table, id }: RecordParamsDto,
    @Body(JsonObjectPipe) patch: JsonObject,
  ): Promise<StoredRecord> {
    return this.storage.patch(table, id, patch);
  }

  @Delete(':id')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({ summary: 'Delete a record' })
  @ApiNoContentResponse({ description: 'Deleted' })
  @ApiProblems(400, 404, 503)
  async remove(@Param() { table, id }: RecordParamsDto): Promise<void> {
    await this.storage.delete(table, id);
  }
}
