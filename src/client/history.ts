import { appendFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

/**
 * The shell's history file: one entry per line, oldest first, at most `size`
 * entries kept. Each entry is appended as it is entered (so shells running
 * at the same time add to one file); the file is cut back to the newest
 * `size` entries when it is read and whenever it grows to twice that.
 * Created with mode 0600: commands can carry secrets.
 */
export class HistoryFile {
  private lines = 0;

  constructor(
    readonly path: string,
    /** Entries kept. */
    readonly size: number,
  ) {}

  /** The newest `size` entries, newest first (readline's order); none if the file does not exist yet. */
  load(): string[] {
    const entries = this.read();
    if (entries.length > this.size) this.rewrite(entries);
    this.lines = Math.min(entries.length, this.size);
    return entries.slice(-this.size).reverse();
  }

  /** Appends one entry. */
  add(entry: string): void {
    if (entry.trim() === '' || /[\r\n]/.test(entry)) return;
    appendFileSync(this.path, `${entry}\n`, { mode: 0o600 });
    if (++this.lines >= 2 * this.size) {
      const entries = this.read();
      this.rewrite(entries);
      this.lines = Math.min(entries.length, this.size);
    }
  }

  private read(): string[] {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    return text.split('\n').filter((l) => l !== '');
  }

  /** Replaces the file with its newest entries, atomically (another shell may be reading it). */
  private rewrite(entries: string[]): void {
    const temporary = `${this.path}.${process.pid}.tmp`;
    writeFileSync(temporary, entries.slice(-this.size).map((e) => `${e}\n`).join(''), { mode: 0o600 });
    renameSync(temporary, this.path);
  }
}
