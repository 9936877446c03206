export const API_ROLES = ['read', 'write', 'admin'] as const;
export type ApiRole = (typeof API_ROLES)[number];

export interface ApiKey {
  readonly key: string;
  readonly role: ApiRole;
}

export const API_KEYS_RULE =
  'API_KEYS must be comma-separated key:role pairs: keys of 1 to 256 visible characters (no comma or space), each once; roles read, write or admin';

/** Keys shorter than this are accepted but warned about at start: they can be guessed. */
export const API_KEY_RECOMMENDED_LENGTH = 16;

const KEY = /^[\x21-\x2b\x2d-\x7e]{1,256}$/;

/** Parses `key:role,key:role`. Returns the rule (a string) when anything is off. */
export function parseApiKeys(text: string): ApiKey[] | string {
  const keys: ApiKey[] = [];
  const seen = new Set<string>();
  for (const entry of text.split(',')) {
    const colon = entry.lastIndexOf(':');
    const key = entry.slice(0, colon).trim();
    const role = entry
      .slice(colon + 1)
      .trim()
      .toLowerCase();
    if (
      colon <= 0 ||
      !KEY.test(key) ||
      !(API_ROLES as readonly string[]).includes(role) ||
      seen.has(key)
    ) {
      return API_KEYS_RULE;
    }
    seen.add(key);
    keys.push({ key, role: role as ApiRole });
  }
  return keys;
}
