import { constants } from 'node:fs';
import { lstat, open, type FileHandle } from 'node:fs/promises';

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
