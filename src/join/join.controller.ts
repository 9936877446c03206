import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiProblems } from '../common/decorators/api-problems.decorator';
import type { JoinRow } from '../database/hash-join';
import type { StoredRecord } from '../database/record.types';
import { StorageService } from '../database/storage.service';
import { JoinParamsDto } from './dto/join-params.dto';
import { JoinQueryDto } from './dto/join-query.dto';
import { JoinRowDto } from './dto/join-row.dto';

@ApiTags('join')
@Controller('api/v1/join')
export class JoinController {
  constructor(private readonly storage: StorageService) {}

  @Get(':left/:right/:key')
  @ApiOperation({
    summary: 'Hash-join two tables where left[leftKey] === right[rightKey]',
    description:
      'Keys match by strict equality of scalars (3 does not match "3"); null or missing keys never match. ' +
      'Rows come in left insertion order. Example: /api/v1/join/users/orders/user_id?leftKey=id',
  })
  @ApiOkResponse({ type: [JoinRowDto] })
  @ApiProblems(400, 404, 429)
  join(
    @Param() { left, right, key }: JoinParamsDto,
    @Query() query: JoinQueryDto,
  ): JoinRow<StoredRecord, StoredRecord>[] {
    return this.storage.join({
      left,
      right,
      leftKey: query.leftKey ?? key,
      rightKey: query.rightKey ?? key,
      type: query.type,
      limit: query.limit,
      offset: query.offset,
    });
  }
}
