const UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };
const SIZE = /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?$/i;

/** Parses `1mb`, `512kb`, `100` (bytes) into bytes; returns NaN for anything else. */
export function parseByteSize(text: string): number {
  const match = SIZE.exec(text.trim());
  if (!match) return Number.NaN;
  return Math.floor(Number(match[1]) * UNITS[(match[2] ?? 'b').toLowerCase()]);
}
