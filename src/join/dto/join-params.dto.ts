import { ApiProperty } from '@nestjs/swagger';
import { Matches } from 'class-validator';
import {
  FIELD_PATH_PATTERN,
  FIELD_PATH_RULE,
  TABLE_NAME_PATTERN,
  TABLE_NAME_RULE,
} from '../../database/names';

export class JoinParamsDto {
  @ApiProperty({ description: 'Left table', example: 'users', pattern: TABLE_NAME_PATTERN.source })
  @Matches(TABLE_NAME_PATTERN, { message: `left must be ${TABLE_NAME_RULE}` })
  readonly left: string;

  @ApiProperty({
    description: 'Right table',
    example: 'orders',
    pattern: TABLE_NAME_PATTERN.source,
  })
  @Matches(TABLE_NAME_PATTERN, { message: `right must be ${TABLE_NAME_RULE}` })
  readonly right: string;

  @ApiProperty({
    description: 'Join field, used on both sides unless leftKey or rightKey is given',
    example: 'user_id',
    pattern: FIELD_PATH_PATTERN.source,
  })
  @Matches(FIELD_PATH_PATTERN, { message: `key must be ${FIELD_PATH_RULE}` })
  readonly key: string;
}
