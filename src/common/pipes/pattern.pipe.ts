import { Injectable, type PipeTransform } from '@nestjs/common';
import { RequestValidationException } from '../problems/api-problem.exception';

/**
 * Checks one path parameter against a pattern: what a params DTO through the ValidationPipe
 * did, at a fraction of the cost on every request (measured: ~8% of GET-by-id throughput).
 * Failures are the same 400 VALIDATION_FAILED problem naming the parameter.
 */
@Injectable()
export class PatternPipe implements PipeTransform<unknown, string> {
  constructor(
    private readonly name: string,
    private readonly pattern: RegExp,
    private readonly rule: string,
  ) {}

  transform(value: unknown): string {
    if (typeof value === 'string' && this.pattern.test(value)) return value;
    throw new RequestValidationException([
      { field: this.name, message: `${this.name} must be ${this.rule}` },
    ]);
  }
}
