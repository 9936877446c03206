import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Makes fresh temporary directories (in the system's, or in `parent`) for one spec file: call it
 * at the file's top level; all of them are removed after its tests.
 */
export function tempDirs(prefix: string): (parent?: string) => string {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  return (parent = tmpdir()) => {
    const dir = mkdtempSync(join(parent, prefix));
    dirs.push(dir);
    return dir;
  };
}
