import { ApiProperty } from '@nestjs/swagger';
import { Matches } from 'class-validator';
import {
  RECORD_ID_PATTERN,
  RECORD_ID_RULE,
  TABLE_NAME_PATTERN,
  TABLE_NAME_RULE,
} from '../../database/names';

export class TableParamsDto {
  @ApiProperty({
    description: `Table name: ${TABLE_NAME_RULE}`,
    example: 'users',
    pattern: TABLE_NAME_PATTERN.source,
  })
  @Matches(TABLE_NAME_PATTERN, { message: `table must be ${TABLE_NAME_RULE}` })
  readonly table: string;
}

export class RecordParamsDto extends TableParamsDto {
  @ApiProperty({
    description: `Record id: ${RECORD_ID_RULE}`,
    example: 'u1',
    pattern: RECORD_ID_PATTERN.source,
  })
  @Matches(RECORD_ID_PATTERN, { message: `id must be ${RECORD_ID_RULE}` })
  readonly id: string;
}
