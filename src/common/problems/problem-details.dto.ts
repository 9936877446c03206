import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class FieldErrorDto {
  @ApiProperty({ example: 'age', description: 'Dot path of the bad field or parameter' })
  readonly field: string;

  @ApiProperty({ example: 'age must be an integer number' })
  readonly message: string;
}

/** RFC 9457 problem details (documentation only: errors are built in problem-details.ts). */
export class ProblemDetailsDto {
  @ApiProperty({
    example: 'urn:memdb:problem:record-not-found',
    description: 'Identifies the problem type',
  })
  readonly type: string;

  @ApiProperty({ example: 'Not Found', description: 'The HTTP reason phrase of the status' })
  readonly title: string;

  @ApiProperty({ example: 404 })
  readonly status: number;

  @ApiProperty({ example: "Record 'u1' does not exist in table 'users'" })
  readonly detail: string;

  @ApiProperty({
    example: 'RECORD_NOT_FOUND',
    description:
      'Machine-readable code: TABLE_NOT_FOUND, RECORD_NOT_FOUND, DUPLICATE_RECORD, RECORD_INVALID, ' +
      'VALIDATION_FAILED, INVALID_NAME, INVALID_BODY, MALFORMED_JSON, PAYLOAD_TOO_LARGE, ' +
      'TOO_MANY_REQUESTS, NOT_FOUND, LOCK_TIMEOUT, INTERNAL_ERROR, …',
  })
  readonly code: string;

  @ApiPropertyOptional({ example: '/api/v1/data/users/u1', description: 'The request path' })
  readonly instance?: string;

  @ApiPropertyOptional({
    type: [FieldErrorDto],
    description: 'Each invalid field (validation errors only)',
  })
  readonly errors?: FieldErrorDto[];
}
