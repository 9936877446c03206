import { Body, Controller, Delete, Get, HttpCode, HttpStatus, Post, Res } from '@nestjs/common';
import {
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { RequiresRole } from '../common/decorators/access.decorator';
import { ApiProblems } from '../common/decorators/api-problems.decorator';
import { ApiPathParams, PathParam } from '../common/decorators/path-params.decorator';
import type { HeaderSink } from '../common/http/header-sink';
import type { IndexInfo } from '../database/table';
import { seqTo } from '../common/http/sequence';
import { StorageService, type TableInfo } from '../database/storage.service';
import { CreateIndexDto, CreateTableDto, IndexDto, TableDto } from './dto/table.dto';

@ApiTags('tables')
@ApiProblems(429)
@Controller('api/v1/tables')
export class TablesController {
  constructor(private readonly storage: StorageService) {}

  @Get()
  @ApiOperation({ summary: 'List tables with their record counts and indexes' })
  @ApiOkResponse({ type: [TableDto] })
  list(@Res({ passthrough: true }) res: HeaderSink): TableInfo[] {
    return this.storage.listTables(seqTo(res));
  }

  @Post()
  @ApiOperation({ summary: 'Create an empty table' })
  @ApiCreatedResponse({ type: TableDto, headers: { Location: { schema: { type: 'string' } } } })
  @ApiProblems(400, 409)
  async create(
    @Body() { name }: CreateTableDto,
    @Res({ passthrough: true }) res: HeaderSink,
  ): Promise<TableInfo> {
    const table = await this.storage.createTable(name, seqTo(res));
    res.header('Location', `/api/v1/tables/${name}`);
    return table;
  }

  @Get(':table')
  @ApiPathParams(['table', 'table'])
  @ApiOperation({ summary: 'One table: record count and indexes' })
  @ApiOkResponse({ type: TableDto })
  @ApiProblems(400, 404)
  get(
    @PathParam('table', 'table') table: string,
    @Res({ passthrough: true }) res: HeaderSink,
  ): TableInfo {
    return this.storage.tableInfo(table, seqTo(res));
  }

  @Delete(':table')
  @ApiPathParams(['table', 'table'])
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({ summary: 'Drop a table and all its records' })
  @ApiNoContentResponse({ description: 'Dropped' })
  @RequiresRole('admin')
  @ApiProblems(400, 404, 503)
  async drop(
    @PathParam('table', 'table') table: string,
    @Res({ passthrough: true }) res: HeaderSink,
  ): Promise<void> {
    await this.storage.dropTable(table, seqTo(res));
  }

  @Post(':table/indexes')
  @ApiPathParams(['table', 'table'])
  @ApiOperation({
    summary: 'Create a hash index on a field',
    description:
      'Equality and in filters and joins on the field use it. A unique index refuses writes that would ' +
      'duplicate a value (409) and cannot be created over existing duplicates (409). Null and missing values ' +
      'are not indexed and never conflict.',
  })
  @ApiCreatedResponse({ type: IndexDto })
  @RequiresRole('admin')
  @ApiProblems(400, 404, 409, 503)
  createIndex(
    @PathParam('table', 'table') table: string,
    @Body() { field, unique }: CreateIndexDto,
    @Res({ passthrough: true }) res: HeaderSink,
  ): Promise<IndexInfo> {
    return this.storage.createIndex(table, field, unique, seqTo(res));
  }

  @Get(':table/indexes')
  @ApiPathParams(['table', 'table'])
  @ApiOperation({ summary: "List a table's indexes" })
  @ApiOkResponse({ type: [IndexDto] })
  @ApiProblems(400, 404)
  listIndexes(
    @PathParam('table', 'table') table: string,
    @Res({ passthrough: true }) res: HeaderSink,
  ): IndexInfo[] {
    return this.storage.listIndexes(table, seqTo(res));
  }

  @Delete(':table/indexes/:field')
  @ApiPathParams(['table', 'table'], ['field', 'field'])
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({ summary: 'Drop an index' })
  @ApiNoContentResponse({ description: 'Dropped' })
  @RequiresRole('admin')
  @ApiProblems(400, 404, 503)
  async dropIndex(
    @PathParam('table', 'table') table: string,
    @PathParam('field', 'field') field: string,
    @Res({ passthrough: true }) res: HeaderSink,
  ): Promise<void> {
    await this.storage.dropIndex(table, field, seqTo(res));
  }
}
