import { Injectable, type PipeTransform } from '@nestjs/common';
import { parseJoinQuery, type JoinQuery, type RawQuery } from '../../database/query/query-params';
import { JOIN_LIMIT_DEFAULT, JOIN_LIMIT_MAX } from '../dto/join-query.dto';

/** Parses a join's query string (type, keys, per-side filters, sort, paging, projection). */
@Injectable()
export class JoinQueryPipe implements PipeTransform<RawQuery, JoinQuery> {
  transform(query: RawQuery): JoinQuery {
    return parseJoinQuery(query ?? {}, {
      defaultLimit: JOIN_LIMIT_DEFAULT,
      maxLimit: JOIN_LIMIT_MAX,
    });
  }
}
