import type { FileHandle } from 'node:fs/promises';
import type { Logger } from '../log.ts';
import type { AuditOptions } from './audit-options.ts';
import { endLastLine, openAuditFile, shiftRotated, type LastLine } from './audit-file.ts';
import { commandLine, droppedLine, eventLine, isStateChanging, lockLine, type CommandEntry, type EventEntry, type LockEntry, type RefusalEntry } from './audit-line.ts';

export interface AuditLogOptions extends AuditOptions {
  logger: Logger;
  /** Clock for the lines' `time`, for tests. */
  now?: () => Date;
  /** First wait before trying again after the file could not be opened or written, ms; doubles up to 60 s. Default 1000. */
  retryMs?: number;
  /** How long `close()` waits for buffered lines to reach the file, ms. Default 2000. */
  closeTimeoutMs?: number;
  /** Opens the file, for tests (a disk that fills up mid-line). Default: the audit log's own open. */
  open?: (path: string) => Promise<FileHandle>;
}

export interface AuditStats {
  /** Lines written to the file. */
  written: number;
  /** Entries dropped: the buffer was full (the disk fell behind or failed), or they were still unwritten at close. */
  dropped: number;
  /** Bytes of lines waiting for the disk, the one being written included. */
  bufferedBytes: number;
}

/** Lines written to the file in one system call, at most (bytes). */
const MAX_BATCH = 1024 * 1024;
const MAX_RETRY_MS = 60_000;
const NEWLINE = 0x0a;

/** Lines taken off the queue and being written; `offset` bytes of them are in the file, and all but `lines` of them whole. */
interface Batch {
  buf: Buffer;
  offset: number;
  lines: number;
}

/**
 * The audit log: a JSON-lines file of the commands clients run (and, at
 * `record: all`, QEMU's events). The data path only formats a line and
 * queues it; one asynchronous writer drains the queue, one write at a time.
 * When the queue holds `maxBufferedBytes`, entries are dropped and counted
 * until the writer has caught up; then a `dropped` line marks the gap in
 * the file and one log line says how many. A file that cannot be opened
 * or written is one log line (until the cause changes or writing works
 * again) and a retry after a capped backoff, or at once on `reopen()`.
 */
export class AuditLog {
  private lines: string[] = [];
  private sizes: number[] = [];
  private buffered = 0;
  private batch: Batch | undefined;
  private file: FileHandle | undefined;
  private fileSize = 0;
  private running = false;
  private wake: NodeJS.Immediate | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay: number;
  /** The error being reported, while the file cannot be opened or written. */
  private failing: string | undefined;
  private reopenWanted = false;
  private dropping = false;
  private episodeDropped = 0;
  private closed: Promise<void> | undefined;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];
  private written = 0;
  private dropped = 0;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly retryMs: number;

  constructor(private readonly options: Readonly<AuditLogOptions>) {
    this.log = options.logger;
    this.now = options.now ?? (() => new Date());
    this.retryMs = options.retryMs ?? 1000;
    this.retryDelay = this.retryMs;
    this.schedule();
  }

  /** Whether a command by this name is recorded (so the caller can skip gathering its entry). */
  recordsCommand(name: string): boolean {
    return this.options.record !== 'changes' || isStateChanging(name);
  }

  /** Whether events are recorded. */
  get recordsEvents(): boolean {
    return this.options.record === 'all';
  }

  /** A command answered (by QEMU or by qmp-mux). */
  command(entry: CommandEntry): void {
    if (!this.recordsCommand(entry.command)) return;
    this.push(commandLine(this.now(), entry, this.options.arguments, this.options.maxEntryBytes));
  }

  /** A command refused by the endpoint's policy: outcome `refused`. */
  refusal(entry: RefusalEntry): void {
    if (!this.recordsCommand(entry.command)) return;
    this.push(commandLine(this.now(), { ...entry, outcome: 'refused', qemuSeconds: undefined }, this.options.arguments, this.options.maxEntryBytes));
  }

  /** A lock granted or ended: recorded whatever `record` says, as the changes to who may change state. */
  lock(entry: LockEntry): void {
    this.push(lockLine(this.now(), entry, this.options.maxEntryBytes));
  }

  /** An event from QEMU. */
  event(entry: EventEntry): void {
    if (!this.recordsEvents) return;
    this.push(eventLine(this.now(), entry, this.options.maxEntryBytes));
  }

  /**
   * Closes the file and opens `path` again (after external rotation, on
   * SIGUSR1): what is already written stays in the old file, everything
   * still queued goes to the new one. Also tries again at once after an error.
   */
  reopen(): void {
    if (this.closed) return;
    this.reopenWanted = true;
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    this.schedule();
  }

  get stats(): AuditStats {
    return { written: this.written, dropped: this.dropped, bufferedBytes: this.buffered };
  }

  /**
   * Writes what is queued, for up to `closeTimeoutMs` (less if the file is
   * failing), then closes the file. Entries still unwritten are counted as
   * dropped and logged. Entries given after this are ignored.
   */
  close(): Promise<void> {
    this.closed ??= this.finish();
    return this.closed;
  }

  private async finish(): Promise<void> {
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    const idle = new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    this.schedule();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.options.closeTimeoutMs ?? 2000)));
    await Promise.race([idle, timeout]);
    clearTimeout(timer);
    this.stopped = true;
    clearImmediate(this.wake);
    clearTimeout(this.retryTimer);
    const unwritten = this.lines.length + (this.batch?.lines ?? 0);
    this.dropped += unwritten;
    if (unwritten > 0 || this.episodeDropped > 0) {
      this.log.warn('audit log closed with entries not written', { path: this.options.path, unwritten, dropped: this.episodeDropped });
    }
    this.lines = [];
    this.sizes = [];
    this.buffered = 0;
    // A write still stuck in the kernel keeps the file; the writer closes it when the write returns.
    if (!this.running) await this.closeFile();
  }

  private push(line: string): void {
    if (this.closed) return;
    const size = Buffer.byteLength(line);
    if (this.dropping || this.buffered + size > this.options.maxBufferedBytes) {
      this.dropping = true;
      this.episodeDropped++;
      this.dropped++;
      return;
    }
    this.enqueue(line, size);
  }

  private enqueue(line: string, size: number): void {
    this.lines.push(line);
    this.sizes.push(size);
    this.buffered += size;
    this.schedule();
  }

  /** Starts the writer on the next turn (so lines queued meanwhile go in one write), unless it is busy or waiting to retry. */
  private schedule(): void {
    if (this.running || this.wake || this.retryTimer || this.stopped) return;
    this.wake = setImmediate(() => {
      this.wake = undefined;
      void this.run();
    });
  }

  private async run(): Promise<void> {
    this.running = true;
    while (await this.step());
    this.running = false;
    if (this.stopped) {
      await this.closeFile();
    } else if (!this.retryTimer && (this.reopenWanted || this.batch || this.lines.length > 0)) {
      // Work that came while the last step was finishing (a reopen() after a failure cleared the retry).
      this.schedule();
      return;
    }
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** One piece of the writer's work; false when there is nothing more to do for now. Never throws. */
  private async step(): Promise<boolean> {
    if (this.stopped) return false;
    if (this.reopenWanted) {
      this.reopenWanted = false;
      await this.closeFile();
      this.restartLine();
    }
    if (!this.file && !(await this.openFile())) return false;
    if (!this.batch) {
      if (this.lines.length === 0) return this.endEpisode();
      if (this.needsRotation()) return this.rotate();
      this.batch = this.takeBatch();
    }
    return this.writeBatch();
  }

  private async openFile(): Promise<boolean> {
    try {
      this.file = await (this.options.open ?? openAuditFile)(this.options.path);
      this.report(await endLastLine(this.file, this.options.maxEntryBytes));
      this.fileSize = (await this.file.stat()).size;
      return true;
    } catch (e) {
      await this.closeFile();
      return this.fail('cannot open the audit log', e);
    }
  }

  private async closeFile(): Promise<void> {
    const file = this.file;
    this.file = undefined;
    try {
      // The torn start of a line goes with the entry (written whole to the next file, or counted as dropped), not left in this one.
      if (file && (this.batch?.buf[this.batch.offset - 1] ?? NEWLINE) !== NEWLINE) this.report(await endLastLine(file, this.options.maxEntryBytes));
    } catch (e) {
      this.log.warn('cannot remove the torn last line of the audit log', { path: this.options.path, error: (e as Error).message });
    }
    try {
      await file?.close();
    } catch (e) {
      this.log.warn('closing the audit log failed', { path: this.options.path, error: (e as Error).message });
    }
  }

  /** A line half written to a file that is now closed is written whole to the next (its torn start removed from the file when it was closed, or is opened). */
  private restartLine(): void {
    if (this.batch && this.batch.offset > 0) this.batch.offset = this.batch.buf.lastIndexOf(NEWLINE, this.batch.offset - 1) + 1;
  }

  /** One line for what was done to a file that did not end in a newline. */
  private report(last: LastLine | undefined): void {
    if (last && 'removed' in last) this.log.warn('audit log ended in a torn line; removed it', { path: this.options.path, bytes: last.removed });
    else if (last) this.log.warn('audit log ended in text that is not an audit line; added a newline', { path: this.options.path });
  }

  private needsRotation(): boolean {
    const max = this.options.rotate.maxBytes;
    return max > 0 && this.fileSize > 0 && this.fileSize + this.sizes[0]! > max;
  }

  /** The file closed and moved to `path.1`, the older ones along; the next step opens a new `path`. */
  private async rotate(): Promise<boolean> {
    await this.closeFile();
    try {
      await shiftRotated(this.options.path, this.options.rotate.keep);
      return true;
    } catch (e) {
      return this.fail('cannot rotate the audit log', e);
    }
  }

  /** Queued lines for one write: whole lines, at most MAX_BATCH bytes, and no more than fits before the next rotation. */
  private takeBatch(): Batch {
    const max = this.options.rotate.maxBytes;
    const room = Math.min(MAX_BATCH, max > 0 ? max - this.fileSize : MAX_BATCH);
    let n = 0;
    let bytes = 0;
    while (n < this.lines.length && (n === 0 || bytes + this.sizes[n]! <= room)) bytes += this.sizes[n++]!;
    const buf = Buffer.from(this.lines.splice(0, n).join(''), 'utf8');
    this.sizes.splice(0, n);
    return { buf, offset: 0, lines: n };
  }

  private async writeBatch(): Promise<boolean> {
    const batch = this.batch!;
    const from = batch.offset;
    try {
      const { bytesWritten } = await this.file!.write(batch.buf, batch.offset, batch.buf.length - batch.offset);
      batch.offset += bytesWritten;
      this.fileSize += bytesWritten;
    } catch (e) {
      return this.fail('cannot write the audit log', e);
    }
    if (this.stopped) return false; // close() has counted this batch's lines as not written
    // Counted as they reach the file, so that a write the disk cuts short counts the lines it did finish.
    const done = batch.offset === batch.buf.length ? batch.lines : linesEnded(batch.buf.subarray(from, batch.offset));
    this.written += done;
    batch.lines -= done;
    if (batch.offset === batch.buf.length) {
      this.batch = undefined;
      this.buffered -= batch.buf.length;
    }
    if (this.failing !== undefined) {
      this.log.info('audit log written again', { path: this.options.path });
      this.failing = undefined;
      this.retryDelay = this.retryMs;
    }
    return true;
  }

  /** The queue is empty: a drop episode ends with a line in the file where the entries are missing. */
  private endEpisode(): boolean {
    if (!this.dropping) return false;
    const dropped = this.episodeDropped;
    this.dropping = false;
    this.episodeDropped = 0;
    this.log.warn('audit log fell behind; entries dropped', { path: this.options.path, dropped });
    const line = droppedLine(this.now(), dropped);
    this.enqueue(line, Buffer.byteLength(line));
    return true;
  }

  /** Logs the error (once while it stays the same) and tries again later. */
  private fail(what: string, e: unknown): false {
    if (this.stopped) return false;
    const error = (e as Error).message;
    if (error !== this.failing) this.log.error(`${what}; will retry`, { path: this.options.path, error });
    this.failing = error;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.schedule();
    }, this.retryDelay);
    this.retryTimer.unref();
    this.retryDelay = Math.min(this.retryDelay * 2, MAX_RETRY_MS);
    return false;
  }
}

/** How many lines end in `bytes`. */
function linesEnded(bytes: Buffer): number {
  let n = 0;
  for (let i = bytes.indexOf(NEWLINE); i >= 0; i = bytes.indexOf(NEWLINE, i + 1)) n++;
  return n;
}
