/**
 * Glob match where `*` stands for any run of characters and everything else is literal.
 * With `*` as the only wildcard, greedy leftmost matching of the literal pieces is exact, so
 * the cost is a few `indexOf` scans over the text: linear in practice, never pattern × text
 * (a backtracking matcher, or a regular expression built from client input, can be).
 */
export function wildcardMatch(pattern: string, text: string): boolean {
  const pieces = pattern.split('*');
  if (pieces.length === 1) return pattern === text;
  const first = pieces[0];
  const last = pieces[pieces.length - 1];
  if (text.length < first.length + last.length || !text.startsWith(first) || !text.endsWith(last))
    return false;
  let position = first.length;
  const end = text.length - last.length;
  for (let i = 1; i < pieces.length - 1; i++) {
    const piece = pieces[i];
    if (piece === '') continue;
    const found = text.indexOf(piece, position);
    if (found === -1 || found + piece.length > end) return false;
    position = found + piece.length;
  }
  return true;
}
