/** Compiles `*` glob patterns (the only wildcard) into one anchored matcher. */
export function globMatcher(patterns: readonly string[]): (name: string) => boolean {
  if (patterns.length === 0) return () => false;
  if (patterns.includes('*')) return () => true;
  const source = patterns.map((p) => p.split('*').map(escape).join('.*')).join('|');
  const re = new RegExp(`^(?:${source})$`, 's');
  return (name) => re.test(name);
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
