import { clearScreenDown, cursorTo, moveCursor, type Interface } from 'node:readline';
import { escapeUnsafe } from '../util/unsafe-text.ts';

/**
 * Output of an interactive shell that can arrive at any time (events, a
 * lost connection) while readline shows a prompt and a half-typed line. On a
 * terminal the text goes above the prompt: the prompt and its line are
 * erased, the text is written, and readline redraws them with the cursor
 * where it was, so the typing is undisturbed. Elsewhere it is written as is.
 */
export class PromptOutput {
  private prompting = false;

  constructor(
    private readonly rl: Interface,
    private readonly out: NodeJS.WritableStream,
    private readonly terminal: boolean,
  ) {}

  /** Shows the prompt (only on a terminal: piped input gets no prompts). */
  prompt(): void {
    if (!this.terminal) return;
    this.prompting = true;
    this.rl.prompt(true);
  }

  /** The prompt is gone: a line was entered. */
  entered(): void {
    this.prompting = false;
  }

  /** Input ended (Ctrl-D): what comes next starts on a line of its own. */
  end(): void {
    if (this.prompting) this.out.write('\n');
    this.prompting = false;
  }

  /** Writes `text` and a line end; characters a terminal would act on are escaped (but line ends and tabs). */
  write(unsafe: string): void {
    const text = escapeUnsafe(unsafe, '\n\t');
    if (!this.prompting) {
      this.out.write(`${text}\n`);
      return;
    }
    const { rows } = this.rl.getCursorPos();
    moveCursor(this.out, 0, -rows);
    cursorTo(this.out, 0);
    clearScreenDown(this.out);
    // readline redraws by first moving up as many rows as it last saw the
    // cursor below the prompt (`prevRows`, which a paste does not update);
    // these newlines give it those rows back.
    const up = (this.rl as unknown as { prevRows?: unknown }).prevRows;
    this.out.write(`${text}\n${'\n'.repeat(typeof up === 'number' ? up : rows)}`);
    this.rl.prompt(true);
  }
}
