/** The bytes the framers look at. */
export const Byte = {
  Tab: 0x09,
  LF: 0x0a,
  CR: 0x0d,
  Space: 0x20,
  Quote: 0x22,
  Comma: 0x2c,
  Zero: 0x30,
  Nine: 0x39,
  Colon: 0x3a,
  LBracket: 0x5b,
  Backslash: 0x5c,
  RBracket: 0x5d,
  LBrace: 0x7b,
  RBrace: 0x7d,
} as const;

/** The whitespace JSON allows between tokens. */
export const isSpace = (c: number): boolean => c === Byte.Space || c === Byte.LF || c === Byte.CR || c === Byte.Tab;
