import { parseFieldPath, type FieldPath } from './field-path';
import { QueryError } from './query.errors';

export const FIELDS_MAX = 100;

type Tree = Map<string, Tree | true>;

/** Parses `fields=id,email,address.city`. @throws QueryError naming `parameter`. */
export function parseFields(text: string, parameter: string): FieldPath[] {
  const items = text.split(',');
  if (items.length > FIELDS_MAX) throw new QueryError(parameter, `at most ${FIELDS_MAX} fields`);
  return items.map((item) => parseFieldPath(item, parameter));
}

/**
 * A projection keeping only `paths`, nested as in the record: `address.city` gives
 * `{ address: { city } }`. Missing fields are left out.
 */
export function compileProjection(
  paths: readonly FieldPath[],
): (record: unknown) => Record<string, unknown> {
  const tree: Tree = new Map();
  for (const path of paths) {
    let node = tree;
    for (let i = 0; i < path.length; i++) {
      const existing = node.get(path[i]);
      if (existing === true) break;
      if (i === path.length - 1) {
        node.set(path[i], true);
      } else {
        const child: Tree = existing ?? new Map();
        node.set(path[i], child);
        node = child;
      }
    }
  }
  return (record) => project(record, tree);
}

function project(value: unknown, tree: Tree): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (typeof value !== 'object' || value === null) return out;
  for (const [key, child] of tree) {
    if (!Object.hasOwn(value, key)) continue;
    const member = (value as Record<string, unknown>)[key];
    if (child === true) {
      out[key] = member;
    } else if (typeof member === 'object' && member !== null && !Array.isArray(member)) {
      const nested = project(member, child);
      if (Object.keys(nested).length > 0) out[key] = nested;
    }
  }
  return out;
}
