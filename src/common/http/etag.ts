import type { VersionCondition } from '../../database/record-version';

/** A record version as a strong entity tag. */
export function formatEtag(version: string): string {
  return `"${version}"`;
}

const STRONG_TAG = /^"([^"]*)"$/;

function tags(header: string): string[] {
  return header.split(',').map((tag) => tag.trim());
}

/**
 * If-Match as a version condition (RFC 9110 §13.1.1): `*`, or the strong tags listed. Weak
 * tags never match (strong comparison), so a list of only weak tags matches nothing.
 */
export function parseIfMatch(header: string | undefined): VersionCondition | undefined {
  if (header === undefined) return undefined;
  if (header.trim() === '*') return '*';
  return tags(header).flatMap((tag) => {
    const match = STRONG_TAG.exec(tag);
    return match ? [match[1]] : [];
  });
}

/** Whether If-None-Match (weak comparison) names `version`, or is `*`. */
export function ifNoneMatchHits(header: string | undefined, version: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  return tags(header).some((tag) => tag.replace(/^W\//, '') === formatEtag(version));
}
