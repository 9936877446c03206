import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';

const FILE = join(__dirname, 'RESULTS.md');

/**
 * Replaces one section of bench/RESULTS.md (between `<!-- name -->` and `<!-- /name -->`), or
 * appends it, so each benchmark script refreshes its own numbers and leaves the others alone.
 */
export function writeSection(name: string, markdown: string): void {
  const start = `<!-- ${name} -->`;
  const end = `<!-- /${name} -->`;
  const block = `${start}\n${markdown.trim()}\n${end}`;
  const current = existsSync(FILE) ? readFileSync(FILE, 'utf8') : '# Benchmark results\n';
  const from = current.indexOf(start);
  const to = current.indexOf(end);
  const next =
    from !== -1 && to > from
      ? current.slice(0, from) + block + current.slice(to + end.length)
      : `${current.trimEnd()}\n\n${block}\n`;
  writeFileSync(FILE, next);
}

/** Markdown table from rows of equal keys. */
export function markdownTable(rows: readonly Record<string, string | number>[]): string {
  const headers = Object.keys(rows[0] ?? {});
  const line = (cells: readonly (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [
    line(headers),
    line(headers.map(() => '---')),
    ...rows.map((row) => line(headers.map((h) => row[h]))),
  ].join('\n');
}

export function machine(): string {
  return `Node ${process.version}, ${process.platform}/${process.arch}, ${cpus().length} cores, ${new Date().toISOString().slice(0, 10)}`;
}

/** A share as a whole percentage: 0.123 -> "12%". */
export const percent = (share: number) => `${Math.round(100 * share)}%`;
