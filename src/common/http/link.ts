import type { RawQuery } from '../../database/query/query-params';

/**
 * The `Link: <…>; rel="next"` value for the page after this one: the same path and
 * parameters, with `cursor` in place of any cursor or offset.
 */
export function nextPageLink(path: string, query: RawQuery, cursor: string): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (name === 'cursor' || name === 'offset') continue;
    for (const item of Array.isArray(value) ? value : [value]) params.append(name, String(item));
  }
  params.append('cursor', cursor);
  return `<${path}?${params.toString()}>; rel="next"`;
}
