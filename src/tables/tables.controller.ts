import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  HttpStatus,
  Param,
  Post,
  Res,
} from '@nestjs/common';
import {
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { RequiresRole } from '../common/decorators/access.decorator';
import { ApiProblems } from '../common/decorators/api-problems.decorator';
import type { HeaderSink } from '../common/http/header-sink';
import type { IndexInfo } from '../database/table';
import { StorageService, type TableInfo } from '../database/storage.service';
import { TableParamsDto } from '../records/dto/record-params.dto';
import {
  CreateIndexDto,
  CreateTableDto,
  IndexDto,
  IndexParamsDto,
  TableDto,
} from './dto/table.dto';

@ApiTags('tables')
@ApiProblems(429)
@Controller('api/v1/tables')
export class TablesController {
  constructor(private readonly storage: StorageService) {}

  @Get()
  @ApiOperation({ summary: 'List tables with their record counts and indexes' })
  @ApiOkResponse({ type: [TableDto] })
  list(): TableInfo[] {
    return this.storage.listTables();
  }

  @Post()
  @ApiOperation({ summary: 'Create an empty table' })
  @ApiCreatedResponse({ type: TableDto, headers: { Location: { schema: { type: 'string' } } } })
  @ApiProblems(400, 409)
  async create(
    @Body() { name }: CreateTableDto,
    @Res({ passthrough: true }) res: HeaderSink,
  ): Promise<TableInfo> {
    const table = await this.storage.createTable(name);
    res.header('Location', `/api/v1/tables/${name}`);
    return table;
  }

  @Get(':table')
  @ApiOperation({ summary: 'One table: record count and indexes' })
  @ApiOkResponse({ type: TableDto })
  @ApiProblems(400, 404)
  get(@Param() { table }: TableParamsDto): TableInfo {
    return this.storage.tableInfo(table);
  }

  @Delete(':table')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({ summary: 'Drop a table and all its records' })
  @ApiNoContentResponse({ description: 'Dropped' })
  @RequiresRole('admin')
  @ApiProblems(400, 404, 503)
  async drop(@Param() { table }: TableParamsDto): Promise<void> {
    await this.storage.dropTable(table);
  }

  @Post(':table/indexes')
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
    @Param() { table }: TableParamsDto,
    @Body() { field, unique }: CreateIndexDto,
  ): Promise<IndexInfo> {
    return this.storage.createIndex(table, field, unique);
  }

  @Get(':table/indexes')
  @ApiOperation({ summary: "List a table's indexes" })
  @ApiOkResponse({ type: [IndexDto] })
  @ApiProblems(400, 404)
  listIndexes(@Param() { table }: TableParamsDto): IndexInfo[] {
    return this.storage.listIndexes(table);
  }

  @Delete(':table/indexes/:field')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({ summary: 'Drop an index' })
  @ApiNoContentResponse({ description: 'Dropped' })
  @RequiresRole('admin')
  @ApiProblems(400, 404, 503)
  async dropIndex(@Param() { table, field }: IndexParamsDto): Promise<void> {
    await this.storage.dropIndex(table, field);
  }
}
