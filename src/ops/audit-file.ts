import { constants } from 'node:fs';
import { lstat, open, rename, type FileHandle } from 'node:fs/promises';

/**
 * Appending, creating with mode 0600, and never through a symbolic link at
 * the final component: in a directory others can write to, a link planted
 * at the path would have qmp-mux append client-chosen text to its target.
 */
const FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW;

const SYMLINK = 'is a symbolic link, which qmp-mux does not follow for the audit log; give the path of the file itself';

/** Opens the audit log at `path` (on every open, reopen and rotation). A symbolic link there is an error saying so. */
export async function openAuditFile(path: string): Promise<FileHandle> {
  try {
    return await open(path, FLAGS, 0o600);
  } catch (e) {
    // O_NOFOLLOW's ELOOP says "too many symbolic links", which is not what happened.
    if ((e as NodeJS.ErrnoException).code === 'ELOOP' && (await isSymlink(path))) throw new Error(`${path} ${SYMLINK}`);
    throw e;
  }
}

/** `path.(keep-1)` -> `path.keep`, ..., `path` -> `path.1`, for a rotation; links are renamed, never followed. */
export async function shiftRotated(path: string, keep: number): Promise<void> {
  for (let i = keep - 1; i >= 1; i--) await renameIfPresent(`${path}.${i}`, `${path}.${i + 1}`);
  await renameIfPresent(path, `${path}.1`);
}

async function renameIfPresent(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/** Why `path` cannot be the audit log, as far as can be told before start-up; undefined if nothing is wrong yet. */
export async function auditPathProblem(path: string): Promise<string | undefined> {
  return (await isSymlink(path)) ? SYMLINK : undefined;
}

async function isSymlink(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isSymbolicLink();
  } catch {
    return false;
  }
}

/** How an audit line starts; text after the file's last newline that starts otherwise was not written by qmp-mux. */
const LINE_START = Buffer.from('{"time":"');
const NEWLINE = 0x0a;

/** What was done to a file's unfinished last line: its bytes `removed` (a torn audit line), or `kept` and ended with a newline. */
export type LastLine = { removed: number } | { kept: true };

/**
 * Makes `file` end at the end of a line, so the next line is not appended
 * to the tail of another: a write the disk cut short (ENOSPC) before
 * qmp-mux was stopped, reopened the file or crashed. Such a torn start of
 * an audit line (no longer than `maxEntryBytes`) is removed: its entry is
 * either still queued, to be written whole, or was counted as dropped, and
 * only qmp-mux appends to the file, so nothing else is cut. Text that is
 * not the start of an audit line is not qmp-mux's to remove; it is ended
 * with a newline. Undefined when there was nothing to do, as for anything
 * but a regular file (what went down a pipe cannot be taken back).
 */
export async function endLastLine(file: FileHandle, maxEntryBytes: number): Promise<LastLine | undefined> {
  const stat = await file.stat();
  if (!stat.isFile() || stat.size === 0) return undefined;
  // The file is open write-only (a FIFO opened for reading would make qmp-mux its reader); this reads the same file, wherever it is now.
  const reader = await open(`/proc/self/fd/${file.fd}`, 'r');
  try {
    const last = await readEnd(reader, stat.size, 1);
    if (last[0] === NEWLINE) return undefined;
    const window = await readEnd(reader, stat.size, maxEntryBytes + 1);
    const tail = window.subarray(window.lastIndexOf(NEWLINE) + 1);
    if (tail.length <= maxEntryBytes && tail.subarray(0, LINE_START.length).equals(LINE_START.subarray(0, tail.length))) {
      await file.truncate(stat.size - tail.length);
      return { removed: tail.length };
    }
    await file.write('\n');
    return { kept: true };
  } finally {
    await reader.close();
  }
}

/** The last `n` bytes of a file of `size` bytes (all of it if shorter). */
async function readEnd(reader: FileHandle, size: number, n: number): Promise<Buffer> {
  const length = Math.min(n, size);
  const { buffer, bytesRead } = await reader.read(Buffer.alloc(length), 0, length, size - length);
  return buffer.subarray(0, bytesRead);
}
