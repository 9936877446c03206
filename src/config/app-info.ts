import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Name and version from package.json, read once at start (src/config and dist/config alike). */
export const APP_INFO: { readonly name: string; readonly version: string } = (() => {
  const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
    name: string;
    version: string;
  };
  return { name: pkg.name, version: pkg.version };
})();
