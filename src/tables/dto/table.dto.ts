import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsOptional, Matches } from 'class-validator';
import {
  FIELD_PATH_PATTERN,
  FIELD_PATH_RULE,
  TABLE_NAME_PATTERN,
  TABLE_NAME_RULE,
} from '../../database/names';

export class CreateTableDto {
  @ApiProperty({
    description: `Table name: ${TABLE_NAME_RULE}`,
    example: 'events',
    pattern: TABLE_NAME_PATTERN.source,
  })
  @Matches(TABLE_NAME_PATTERN, { message: `name must be ${TABLE_NAME_RULE}` })
  readonly name: string;
}

export class CreateIndexDto {
  @ApiProperty({
    description: `Field to index (a dot path): ${FIELD_PATH_RULE}`,
    example: 'email',
    pattern: FIELD_PATH_PATTERN.source,
  })
  @Matches(FIELD_PATH_PATTERN, { message: `field must be ${FIELD_PATH_RULE}` })
  readonly field: string;

  @ApiPropertyOptional({ description: 'Refuse two records with the same value', default: false })
  @IsOptional()
  @IsBoolean()
  readonly unique: boolean = false;
}

export class IndexDto {
  @ApiProperty({ example: 'email' })
  readonly field: string;

  @ApiProperty({ example: true })
  readonly unique: boolean;
}

export class TableDto {
  @ApiProperty({ example: 'users' })
  readonly name: string;

  @ApiProperty({ example: 42, description: 'Records in the table' })
  readonly records: number;

  @ApiProperty({ type: [IndexDto] })
  readonly indexes: IndexDto[];
}
