import { Injectable, type PipeTransform } from '@nestjs/common';
import { parseListQuery, type ListQuery, type RawQuery } from '../../database/query/query-params';
import { LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX } from '../dto/list-records-query.dto';

/** Parses a list's query string (filters, sort, paging, projection); errors name the parameter. */
@Injectable()
export class ListQueryPipe implements PipeTransform<RawQuery, ListQuery> {
  transform(query: RawQuery): ListQuery {
    return parseListQuery(query ?? {}, {
      defaultLimit: LIST_LIMIT_DEFAULT,
      maxLimit: LIST_LIMIT_MAX,
    });
  }
}
