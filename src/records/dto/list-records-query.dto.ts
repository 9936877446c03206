import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, Max, Min } from 'class-validator';

export const LIST_LIMIT_DEFAULT = 100;
export const LIST_LIMIT_MAX = 1000;

export class ListRecordsQueryDto {
  @ApiPropertyOptional({
    minimum: 1,
    maximum: LIST_LIMIT_MAX,
    default: LIST_LIMIT_DEFAULT,
    example: 20,
  })
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(LIST_LIMIT_MAX)
  readonly limit: number = LIST_LIMIT_DEFAULT;

  @ApiPropertyOptional({
    minimum: 0,
    default: 0,
    example: 0,
    description: 'Records to skip, in insertion order',
  })
  @Type(() => Number)
  @IsInt()
  @Min(0)
  readonly offset: number = 0;
}
