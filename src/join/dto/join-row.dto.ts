import { ApiProperty } from '@nestjs/swagger';

/** One joined row (documentation only): both records whole, nothing merged. */
export class JoinRowDto {
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    example: { id: 'u1', email: 'ada@example.com' },
  })
  readonly left: Record<string, unknown>;

  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    nullable: true,
    description: 'null for an unmatched left record of a left join',
    example: { id: 'o1', user_id: 'u1', total_price: 199.5 },
  })
  readonly right: Record<string, unknown> | null;
}
