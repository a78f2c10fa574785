/**
 * Compiles `*` glob patterns (the only wildcard) into one anchored matcher.
 *
 * Matched without regular expressions: clients choose patterns
 * (`__org.qmp-mux_set-events`, `__org.qmp-mux_query-events`, also on
 * `read-only` endpoints) and the names and arguments they are matched
 * against, and a backtracking regular expression such as
 * `^(?:.*.*.*...Z)$` takes time exponential in its stars (201 bytes of
 * `*...*Z` took 44 s against `STOP`, the whole process frozen). Here each
 * pattern is its fixed pieces: the first a prefix, the last a suffix, those
 * between found leftmost in turn, which is a match whenever there is one;
 * time linear in the name for each piece.
 */
export function globMatcher(patterns: readonly string[]): (name: string) => boolean {
  if (patterns.length === 0) return () => false;
  if (patterns.includes('*')) return () => true;
  const matchers = patterns.map(compile);
  if (matchers.length === 1) return matchers[0] as (name: string) => boolean;
  return (name) => matchers.some((m) => m(name));
}

function compile(pattern: string): (name: string) => boolean {
  const pieces = pattern.split('*');
  if (pieces.length === 1) return (name) => name === pattern;
  const first = pieces[0] as string;
  const last = pieces[pieces.length - 1] as string;
  const middle = pieces.slice(1, -1).filter((p) => p !== '');
  const least = first.length + last.length + middle.reduce((n, p) => n + p.length, 0);
  return (name) => {
    if (name.length < least || !name.startsWith(first) || !name.endsWith(last)) return false;
    const end = name.length - last.length;
    let at = first.length;
    for (const piece of middle) {
      const found = name.indexOf(piece, at);
      if (found < 0 || found + piece.length > end) return false;
      at = found + piece.length;
    }
    return true;
  };
}
