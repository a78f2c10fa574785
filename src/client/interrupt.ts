import type { Interface } from 'node:readline';
import type { ShorthandParser } from './shorthand.ts';

/** What Ctrl-C at the shell's prompt did. */
export type Interrupted = { kind: 'cleared' } | { kind: 'abandoned'; actions: number } | { kind: 'quit' };

/**
 * Ctrl-C abandons what is being typed, the nearest first: the typed line,
 * then an open transaction( ... ) (its actions were typed too, over several
 * lines, and quitting would lose them unsaid). Only with nothing left to
 * abandon does it quit.
 */
export function interrupt(rl: Interface, parser: ShorthandParser): Interrupted {
  if (rl.line !== '') {
    // To the end, then back to the start: the whole line, wherever the cursor was.
    rl.write(null, { ctrl: true, name: 'e' });
    rl.write(null, { ctrl: true, name: 'u' });
    return { kind: 'cleared' };
  }
  if (parser.inTransaction) return { kind: 'abandoned', actions: parser.reset() };
  return { kind: 'quit' };
}
