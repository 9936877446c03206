import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

/** `event: change`: a record inserted, updated or deleted. */
export class ChangeEventDto {
  @ApiProperty({ description: 'Position `<seq>.<i>` (also the event id)', example: '1042.0' })
  pos!: string;
  @ApiProperty({ description: 'The log sequence of the entry (X-Memdb-Seq)', example: 1042 })
  seq!: number;
  @ApiProperty({ example: 'orders' })
  table!: string;
  @ApiProperty({ enum: ['insert', 'update', 'delete'] })
  op!: string;
  @ApiProperty({ example: 'o1' })
  id!: string;
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    nullable: true,
    description: 'The record after the change; null for a delete',
  })
  record!: Record<string, unknown> | null;
  @ApiPropertyOptional({
    description: 'With a record filter on one table: whether the record matches after the change',
  })
  matches?: boolean;
}

/** `event: table`: a table or an index created or dropped. */
export class TableEventDto {
  @ApiProperty({ example: '1043.0' })
  pos!: string;
  @ApiProperty({ example: 1043 })
  seq!: number;
  @ApiProperty({ example: 'orders' })
  table!: string;
  @ApiProperty({ enum: ['create_table', 'drop_table', 'create_index', 'drop_index'] })
  op!: string;
  @ApiPropertyOptional({ description: 'The index field (index events)', example: 'user_id' })
  field?: string;
}

/** `event: reset` (SSE) or `reset` (long-poll): the resume point could not be served exactly. */
export class ResetEventDto {
  @ApiProperty({ enum: ['too_old', 'ahead', 'restore'] })
  reason!: string;
  @ApiProperty({ description: 'The oldest sequence a feed can resume after', example: '900' })
  oldest!: string;
  @ApiProperty({ description: 'Where the feed goes on from (the event id)', example: '900' })
  continue_from!: string;
}

/** `event: overflow`: the subscriber read too slowly; its stream ends. */
export class OverflowEventDto {
  @ApiProperty({ description: 'Resume from here (Last-Event-ID)', example: '1042.3' })
  resume_from!: string;
}

/** The long-poll answer (any Accept other than text/event-stream). */
export class ChangesPollDto {
  @ApiProperty({
    type: 'array',
    items: {
      oneOf: [
        { $ref: '#/components/schemas/ChangeEventDto' },
        { $ref: '#/components/schemas/TableEventDto' },
      ],
    },
  })
  changes!: unknown[];
  @ApiProperty({
    description: 'The last change given, or where the feed stands when there is none',
    example: '1043.0',
  })
  last_pos!: string;
  @ApiProperty({ example: 1043 })
  last_seq!: number;
  @ApiProperty({ type: ResetEventDto, nullable: true })
  reset!: ResetEventDto | null;
}
