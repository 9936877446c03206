import { ApiProperty } from '@nestjs/swagger';

/** A stored record (documentation only): the client's fields plus the server's. */
export class RecordDto {
  @ApiProperty({
    example: '3f1c2d9e-8a4b-4c1e-9f0a-2b6d7e8f9a01',
    description: 'The id given on create, or a UUID v4',
  })
  readonly id: string;

  @ApiProperty({
    example: '2026-11-25T20:00:00.000Z',
    description: 'Set by the server on create (ISO 8601 UTC)',
  })
  readonly created_at: string;

  @ApiProperty({
    example: '2026-11-25T20:05:00.000Z',
    description: 'Set by the server on every write; always later than the previous value',
  })
  readonly updated_at: string;
}
