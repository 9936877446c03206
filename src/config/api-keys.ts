export const API_ROLES = ['read', 'write', 'admin'] as const;
export type ApiRole = (typeof API_ROLES)[number];

export interface ApiKey {
  readonly key: string;
  readonly role: ApiRole;
}

export const API_KEYS_RULE =
  'API_KEYS must be comma-separated key:role pairs; keys of 16 to 256 characters from A-Z a-z 0-9 . _ ~ + / = -, each once; roles read, write or admin';

const KEY = /^[A-Za-z0-9._~+/=-]{16,256}$/;

/** Parses `key:role,key:role`. Returns the rule (a string) when anything is off. */
export function parseApiKeys(text: string): ApiKey[] | string {
  const keys: ApiKey[] = [];
  const seen = new Set<string>();
  for (const entry of text.split(',')) {
    const colon = entry.lastIndexOf(':');
    const key = entry.slice(0, colon).trim();
    const role = entry.slice(colon + 1).trim();
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
