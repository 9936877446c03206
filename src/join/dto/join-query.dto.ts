import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsOptional, Matches, Max, Min } from 'class-validator';
import { JOIN_TYPES, type JoinType } from '../../database/hash-join';
import { FIELD_NAME_PATTERN, FIELD_NAME_RULE } from '../../database/names';

export const JOIN_LIMIT_DEFAULT = 100;
export const JOIN_LIMIT_MAX = 10_000;

export class JoinQueryDto {
  @ApiPropertyOptional({ description: 'Field of the left table (default: key)', example: 'id' })
  @IsOptional()
  @Matches(FIELD_NAME_PATTERN, { message: `leftKey must be ${FIELD_NAME_RULE}` })
  readonly leftKey?: string;

  @ApiPropertyOptional({
    description: 'Field of the right table (default: key)',
    example: 'user_id',
  })
  @IsOptional()
  @Matches(FIELD_NAME_PATTERN, { message: `rightKey must be ${FIELD_NAME_RULE}` })
  readonly rightKey?: string;

  @ApiPropertyOptional({
    enum: JOIN_TYPES,
    default: 'inner',
    description: 'inner: matched pairs only; left: also unmatched left records, with right: null',
  })
  @IsIn(JOIN_TYPES, { message: `type must be one of ${JOIN_TYPES.join(', ')}` })
  readonly type: JoinType = 'inner';

  @ApiPropertyOptional({ minimum: 1, maximum: JOIN_LIMIT_MAX, default: JOIN_LIMIT_DEFAULT })
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(JOIN_LIMIT_MAX)
  readonly limit: number = JOIN_LIMIT_DEFAULT;

  @ApiPropertyOptional({ minimum: 0, default: 0, description: 'Rows to skip' })
  @Type(() => Number)
  @IsInt()
  @Min(0)
  readonly offset: number = 0;
}
