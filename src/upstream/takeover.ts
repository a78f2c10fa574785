import { lstat, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { SocketOptions } from '../config/options.ts';
import { ListenError } from '../errors.ts';
import { answers } from '../downstream/listener.ts';

/** QEMU's socket, moved aside so qmp-mux can serve clients at its path. */
export interface Takeover {
  /** Where QEMU's socket was, and where clients now find qmp-mux. */
  original: string;
  /** Where QEMU's socket is while qmp-mux runs. */
  moved: string;
  /** QEMU's socket's mode and owner, for qmp-mux's socket at the original path. */
  socket: SocketOptions;
  /** Puts QEMU's socket back (after qmp-mux's socket at the original path is gone). */
  restore(): Promise<void>;
}

/** What `reclaim` needs of the endpoint serving clients at the original path. */
export interface TakenOverPath {
  ownsSocketFile(): Promise<boolean>;
  relisten(): Promise<void>;
}

/**
 * Takes the original path back after QEMU took it: a QEMU that starts
 * replaces whatever socket is at its path, and one that exits removes its
 * path, qmp-mux's socket by then. A new QEMU's socket found there is moved
 * aside again; then qmp-mux listens at the path again. Returns whether
 * anything had to be done.
 */
export async function reclaim(takeover: Takeover, endpoint: TakenOverPath): Promise<boolean> {
  if (await endpoint.ownsSocketFile()) return false;
  const info = await lstat(takeover.original).catch(() => undefined);
  if (info?.isSocket() && (await answers(takeover.original))) await rename(takeover.original, takeover.moved);
  await endpoint.relisten();
  return true;
}

/** The hidden name QEMU's socket gets while taken over. */
export function movedPath(original: string): string {
  return join(dirname(original), `.${basename(original)}.qmp-mux`);
}

/**
 * Moves QEMU's live QMP socket at `original` aside. A takeover left over by a
 * qmp-mux that died (QEMU's socket still at the moved path, a dead socket at
 * the original path) is picked up again.
 */
export async function takeOver(original: string): Promise<Takeover> {
  const moved = movedPath(original);
  if (await answers(moved)) {
    if (await answers(original)) throw new ListenError(`cannot take over unix:${original}: it is already taken over by a running process`);
  } else {
    const info = await lstat(original).catch(() => undefined);
    if (!info?.isSocket()) throw new ListenError(`cannot take over unix:${original}: no socket there`);
    if (!(await answers(original))) throw new ListenError(`cannot take over unix:${original}: nothing is listening there`);
    await rename(original, moved);
  }
  const info = await stat(moved);
  return {
    original,
    moved,
    socket: { mode: info.mode & 0o777, owner: info.uid, group: info.gid },
    restore: async () => {
      const stillThere = await lstat(original).catch(() => undefined);
      if (!stillThere) await rename(moved, original).catch(() => undefined);
      // A QEMU restarted since holds the original path; the moved socket is its predecessor's.
      else if (!(await answers(moved))) await unlink(moved).catch(() => undefined);
    },
  };
}
