import {
  Controller,
  Get,
  HttpCode,
  HttpStatus,
  Post,
  Req,
  Res,
  StreamableFile,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import {
  ApiBody,
  ApiConsumes,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiProduces,
  ApiTags,
} from '@nestjs/swagger';
import type { IncomingMessage } from 'node:http';
import { seqTo } from '../common/http/sequence';
import type { HeaderSink } from '../common/http/header-sink';
import { RequiresRole } from '../common/decorators/access.decorator';
import { ApiProblems } from '../common/decorators/api-problems.decorator';
import { RawBody } from '../common/decorators/raw-body.decorator';
import { assertJsonWithinLimits } from '../common/pipes/json-object.pipe';
import { ApiProblemException } from '../common/problems/api-problem.exception';
import type { Env } from '../config/env.validation';
import { DatabaseError } from '../database/database.errors';
import { DamagedFileError } from '../database/persistence/log-format';
import { PersistenceService } from '../database/persistence/persistence.service';
import { parseSnapshot } from '../database/persistence/snapshot';
import { readBody } from './read-body';

const BACKUP_TYPE = 'application/octet-stream';
/** Errors of a backup whose content breaks the rules of writes: the file is at fault (400). */
const CONTENT_ERRORS = new Set([
  'INVALID_NAME',
  'RECORD_INVALID',
  'DUPLICATE_RECORD',
  'UNIQUE_VIOLATION',
  'TABLE_EXISTS',
  'INDEX_EXISTS',
  'INVALID_QUERY',
]);

function invalidBackup(detail: string): ApiProblemException {
  return new ApiProblemException(HttpStatus.BAD_REQUEST, 'INVALID_BACKUP', detail);
}

@ApiTags('admin')
@ApiProblems(401, 403, 429)
@RequiresRole('admin')
@Controller('api/v1/admin')
export class AdminController {
  private readonly maxDepth: number;
  private readonly restoreMaxBytes: number;

  constructor(
    private readonly persistence: PersistenceService,
    config: ConfigService<Env, true>,
  ) {
    this.maxDepth = config.get('MAX_DEPTH', { infer: true });
    this.restoreMaxBytes = config.get('RESTORE_MAX_BYTES', { infer: true });
  }

  @Get('backup')
  @ApiOperation({
    summary: 'Download a consistent point-in-time backup of all tables while writes continue',
    description:
      'The snapshot format: lines of `<crc32> <JSON>` (header, each table and its records, end line). ' +
      'Writes are held only while table references are copied.',
  })
  @ApiProduces(BACKUP_TYPE)
  @ApiOkResponse({ description: 'The backup file, streamed' })
  async backup(@Res({ passthrough: true }) res: HeaderSink): Promise<StreamableFile> {
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    return new StreamableFile(await this.persistence.backup(seqTo(res)), {
      type: BACKUP_TYPE,
      disposition: `attachment; filename="memdb-backup-${stamp}.jsonl"`,
    });
  }

  @Post('restore')
  @RawBody()
  @HttpCode(HttpStatus.OK)
  @ApiOperation({
    summary: 'Replace all data with a backup, all or nothing',
    description:
      'The whole upload is checked first (format, checksums, counts, names, ids, hostile keys, typed ' +
      'tables, unique indexes); a bad file is a 400 and live data is untouched. Then it is swapped in ' +
      'at once (and, with DATA_DIR, saved as the next snapshot).',
  })
  @ApiConsumes(BACKUP_TYPE)
  @ApiBody({ schema: { type: 'string', format: 'binary' } })
  @ApiOkResponse({
    schema: {
      type: 'object',
      properties: { tables: { type: 'integer' }, records: { type: 'integer' } },
    },
  })
  @ApiProblems(400, 413, 503)
  async restore(
    @Req() request: unknown,
    @Res({ passthrough: true }) res: HeaderSink,
  ): Promise<{ tables: number; records: number }> {
    const raw = ((request as { raw?: IncomingMessage }).raw ?? request) as IncomingMessage;
    const bytes = await readBody(raw, this.restoreMaxBytes);
    let data;
    try {
      data = await parseSnapshot(bytes, 'the upload');
    } catch (error) {
      if (error instanceof DamagedFileError) throw invalidBackup(error.message);
      throw error;
    }
    for (const table of data) {
      for (const record of table.records) assertJsonWithinLimits(record, this.maxDepth);
      assertJsonWithinLimits(table.indexes, this.maxDepth);
    }
    try {
      return await this.persistence.restore(data, seqTo(res));
    } catch (error) {
      if (error instanceof DatabaseError && CONTENT_ERRORS.has(error.code))
        throw invalidBackup(`The backup cannot be restored: ${error.message}`);
      throw error;
    }
  }

  @Post('compact')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({
    summary: 'Write a snapshot now and start a fresh journal (DATA_DIR); writes continue',
  })
  @ApiNoContentResponse({ description: 'Compacted (nothing to do without DATA_DIR)' })
  @ApiProblems(503)
  async compact(@Res({ passthrough: true }) res: HeaderSink): Promise<void> {
    await this.persistence.compact(seqTo(res));
  }
}
