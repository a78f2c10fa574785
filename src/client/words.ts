/** A word of a shorthand command line, and where it is (0-based, end exclusive). */
export interface Word {
  text: string;
  start: number;
  end: number;
}

/** Something the line left open at its end. */
export interface Unclosed {
  /** The opening character: `"`, `'`, `{` or `[`. */
  opener: string;
  /** Where it is (0-based). */
  at: number;
}

export interface SplitLine {
  words: Word[];
  /** A quote or bracket still open at the end of the line (it is then inside the last word). */
  unclosed?: Unclosed;
  /** True when the line ends between words (empty, or whitespace last). */
  betweenWords: boolean;
}

/**
 * Splits a shorthand line into words. Spaces and tabs separate words, except
 * inside quotes and brackets: `"` or `'` opens a quoted part that runs to
 * the same quote (a backslash escapes the next character), and `{`/`[` open
 * a part that runs to the matching `}`/`]`, so a JSON value may contain
 * spaces. The characters are kept: the words are the line's own text.
 */
export function splitWords(line: string): SplitLine {
  const words: Word[] = [];
  let start = -1;
  let quote = '';
  let quoteAt = 0;
  let escaped = false;
  const brackets: number[] = [];
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote !== '') {
      if (escaped) escaped = false;
      else if (c === '\\') escaped = true;
      else if (c === quote) quote = '';
      continue;
    }
    if ((c === ' ' || c === '\t') && brackets.length === 0) {
      if (start >= 0) words.push({ text: line.slice(start, i), start, end: i });
      start = -1;
      continue;
    }
    if (start < 0) start = i;
    if (c === '"' || c === "'") {
      quote = c;
      quoteAt = i;
    } else if (c === '{' || c === '[') {
      brackets.push(i);
    } else if ((c === '}' || c === ']') && brackets.length > 0) {
      brackets.pop();
    }
  }
  if (start >= 0) words.push({ text: line.slice(start), start, end: line.length });
  const out: SplitLine = { words, betweenWords: start < 0 };
  if (quote !== '') out.unclosed = { opener: quote, at: quoteAt };
  else if (brackets.length > 0) out.unclosed = { opener: line[brackets[0]!]!, at: brackets[0]! };
  return out;
}
