import { HttpStatus, Injectable, type PipeTransform } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { assertRecordBody } from '../../common/pipes/json-object.pipe';
import { ApiProblemException } from '../../common/problems/api-problem.exception';
import type { Env } from '../../config/env.validation';
import type { JsonObject } from '../../database/record.types';

/** A create body: one record, or an array of 1 to BULK_MAX records written all or nothing. */
@Injectable()
export class RecordOrBatchPipe implements PipeTransform<unknown, JsonObject | JsonObject[]> {
  private readonly bulkMax: number;

  constructor(config: ConfigService<Env, true>) {
    this.bulkMax = config.get('BULK_MAX', { infer: true });
  }

  transform(value: unknown): JsonObject | JsonObject[] {
    if (!Array.isArray(value)) {
      assertRecordBody(value);
      return value;
    }
    if (value.length === 0) {
      throw new ApiProblemException(
        HttpStatus.BAD_REQUEST,
        'INVALID_BODY',
        'A bulk write needs at least one record',
      );
    }
    if (value.length > this.bulkMax) {
      throw new ApiProblemException(
        HttpStatus.PAYLOAD_TOO_LARGE,
        'BULK_TOO_LARGE',
        `A bulk write holds at most ${this.bulkMax} records (BULK_MAX); this one has ${value.length}`,
      );
    }
    value.forEach((element, index) => assertRecordBody(element, `[${index}]`));
    return value as JsonObject[];
  }
}
