import { lstat, rename, stat, unlink } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { defaultEndpoint } from '../downstream/endpoint-options.ts';
import type { BackoffOptions } from './backoff.ts';
import { Endpoint } from '../downstream/endpoint.ts';
import { ListenError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { answers } from '../net/unix-socket.ts';
import { Dialer } from './dial-source.ts';
import type { UpstreamSource } from './source.ts';

export interface TakeoverOptions {
  /** QEMU's QMP socket, where clients will find qmp-mux instead. */
  path: string;
  backoff: BackoffOptions;
  log: Logger;
}

/** The endpoint serving clients at QEMU's original path. */
const TAKEOVER_ENDPOINT = 'takeover';

/**
 * Takeover: QEMU's live QMP socket is moved aside to `.NAME.qmp-mux` in the
 * same directory, qmp-mux dials it there and serves clients at the original
 * path, with the original's mode and owner; on stop QEMU's socket is put
 * back. QEMU takes its path back when it restarts (a QEMU that exits removes
 * its path, qmp-mux's socket by then, and one that starts replaces whatever
 * socket is there), so while QEMU is away every reconnect attempt first
 * takes the path back.
 */
export class TakeoverSource implements UpstreamSource {
  readonly mode = 'connect';
  endpoints: readonly Endpoint[] = [];
  private readonly moved: string;
  private readonly dialer: Dialer;
  private endpoint: Endpoint | undefined;

  constructor(private readonly options: TakeoverOptions) {
    this.moved = movedPath(options.path);
    this.dialer = new Dialer({ address: { type: 'unix', path: this.moved }, backoff: options.backoff, log: options.log, beforeRetry: () => this.takeBack() });
  }

  /** Moves QEMU's socket aside, or picks up a takeover left by a qmp-mux that died. */
  async open(): Promise<void> {
    const { path, log } = this.options;
    const check = await checkTakeover(path);
    if ('problem' in check) throw new ListenError(`cannot take over unix:${path}: ${check.problem}`);
    if (!check.resume) await rename(path, this.moved);
    const info = await stat(this.moved);
    const options = defaultEndpoint(TAKEOVER_ENDPOINT, { type: 'unix', path });
    options.socket = { mode: info.mode & 0o777, owner: info.uid, group: info.gid };
    this.endpoint = new Endpoint(options);
    this.endpoints = [this.endpoint];
    log.info("took over QEMU's socket", { socket: path, movedTo: this.moved });
  }

  start(onSocket: (socket: Socket) => void): Promise<void> {
    return this.dialer.start(onSocket);
  }

  ready(): void {
    this.dialer.ready();
  }

  lost(): void {
    this.dialer.lost();
  }

  /** Stops dialing and puts QEMU's socket back (after the endpoint at the original path has closed). */
  async stop(): Promise<void> {
    await this.dialer.stop();
    const { path } = this.options;
    const stillThere = await lstat(path).catch(() => undefined);
    if (!stillThere) await rename(this.moved, path).catch(() => undefined);
    // A QEMU restarted since holds the original path; the moved socket is its predecessor's.
    else if (!(await answers(this.moved))) await unlink(this.moved).catch(() => undefined);
  }

  /**
   * Takes the original path back after QEMU took it: a new QEMU's socket
   * found there is moved aside again; then qmp-mux listens there again.
   */

  abort(): void {}
  private async takeBack(): Promise<void> {
    const endpoint = this.endpoint;
    if (!endpoint?.listening || (await endpoint.ownsSocketFile())) return;
    const { path, log } = this.options;
    const info = await lstat(path).catch(() => undefined);
    if (info?.isSocket() && (await answers(path))) await rename(path, this.moved);
    await endpoint.relisten();
    log.info("took QEMU's socket path back", { socket: path, movedTo: this.moved });
  }
}

/** The hidden name QEMU's socket gets while taken over. */
export function movedPath(original: string): string {
  return join(dirname(original), `.${basename(original)}.qmp-mux`);
}

/**
 * Whether QEMU's socket at `path` can be taken over: it must be a live
 * socket, or already at the moved path with nothing live at `path` (a
 * takeover left over by a qmp-mux that died), which is then `resume`d.
 */
export async function checkTakeover(path: string): Promise<{ resume: boolean } | { problem: string }> {
  const moved = movedPath(path);
  if (await answers(moved)) return (await answers(path)) ? { problem: 'it is already taken over by a running process' } : { resume: true };
  const info = await lstat(path).catch(() => undefined);
  if (!info?.isSocket()) return { problem: 'no socket there' };
  if (!(await answers(path))) return { problem: 'nothing is listening there' };
  return { resume: false };
}
