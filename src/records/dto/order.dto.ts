import { ApiProperty } from '@nestjs/swagger';
import { IsInt, IsISO8601, IsNotEmpty, IsNumber, IsString, Matches, Min } from 'class-validator';
import { RECORD_ID_PATTERN, RECORD_ID_RULE } from '../../database/names';

/** An RFC 3339 date-time (the ISO 8601 profile OpenAPI's date-time names): 2026-11-25T20:00:00Z. */
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** A record of the typed table `orders`. */
export class OrderDto {
  @ApiProperty({
    example: 'u1',
    description: `The user's id: ${RECORD_ID_RULE}`,
    pattern: RECORD_ID_PATTERN.source,
  })
  @IsString()
  @Matches(RECORD_ID_PATTERN, { message: `user_id must be ${RECORD_ID_RULE}` })
  readonly user_id: string;

  @ApiProperty({ example: 'Analytical Engine', minLength: 1 })
  @IsString()
  @IsNotEmpty()
  readonly product_name: string;

  @ApiProperty({ example: 2, minimum: 1, type: 'integer' })
  @IsInt()
  @Min(1)
  readonly quantity: number;

  @ApiProperty({ example: 199.5, minimum: 0 })
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  readonly total_price: number;

  @ApiProperty({ example: '2026-11-25T20:00:00Z', format: 'date-time', pattern: DATE_TIME.source })
  @IsString()
  @IsISO8601({ strict: true })
  @Matches(DATE_TIME, {
    message: 'order_date must be a date-time with seconds and a zone, such as 2026-11-25T20:00:00Z',
  })
  readonly order_date: string;
}
