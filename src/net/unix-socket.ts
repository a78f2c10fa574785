import { randomBytes } from 'node:crypto';
import { statSync, type Stats } from 'node:fs';
import { chmod, chown, lstat, rename, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { ListenError } from '../errors.ts';
import { formatAddress, type Address } from './address.ts';
import { resolveId } from './owner.ts';

export interface SocketOptions {
  /** File mode of a unix socket. */
  mode: number;
  /** Owner (user name or uid) of a unix socket; unchanged when undefined. */
  owner: string | number | undefined;
  /** Group (group name or gid) of a unix socket; unchanged when undefined. */
  group: string | number | undefined;
}

/** The longest unix socket path the kernel takes (`sun_path` less its NUL). */
export const MAX_SOCKET_PATH = 107;

export interface ListenOptions {
  /** Mode and owner of a unix socket file (mode 0600 when not given). */
  socket?: SocketOptions;
  /**
   * An error after listening began, such as running out of file
   * descriptors while accepting (the server goes on listening).
   */
  onError?: (err: NodeJS.ErrnoException) => void;
}

/**
 * A server listening for connections, and for a unix socket the file it
 * created: it removes that file when it closes, and no other.
 */
export class Listener {
  private constructor(
    readonly server: Server,
    /** Where it listens (the real port, when 0 was asked for). */
    readonly address: Address,
    /** The socket file made, by device and inode. */
    private readonly file: { dev: number; ino: number } | undefined,
  ) {}

  /**
   * Listens on `address`. A unix socket file left behind by a dead process
   * is replaced; one a live process answers on is an error, never stolen.
   * A unix socket is bound at a fresh name beside its path, given its mode
   * and owner, then renamed into place: clients never see it without them,
   * and Node, which removes a unix socket by the name it was bound to when
   * its server closes, never removes a file another process has put at the
   * path since. A path too long to have a longer name beside it is bound in
   * place.
   */
  static async open(address: Address, onConnection: (socket: Socket) => void, options: ListenOptions = {}): Promise<Listener> {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, onConnection);
    if (address.type === 'tcp') {
      await bind(server, address, address, () => server.listen(address.port, address.host));
      return Listener.ready(server, address, undefined, options);
    }
    const path = address.path;
    await clearStaleSocket(path);
    const fresh = join(dirname(path), `.qmp-mux.${process.pid}.${randomBytes(4).toString('hex')}`);
    const at = Buffer.byteLength(fresh) <= MAX_SOCKET_PATH ? fresh : path;
    await bind(server, address, { type: 'unix', path: at }, () => server.listen(at));
    try {
      await chmod(at, options.socket?.mode ?? 0o600);
      const { owner, group } = options.socket ?? {};
      if (owner !== undefined || group !== undefined) {
        await chown(at, owner === undefined ? -1 : resolveId('user', owner), group === undefined ? -1 : resolveId('group', group));
      }
      if (at !== path) await rename(at, path);
    } catch (e) {
      server.close();
      await unlink(at).catch(() => undefined);
      throw new ListenError(`cannot set up ${formatAddress(address)}: ${(e as Error).message}`);
    }
    const { dev, ino } = await lstat(path);
    return Listener.ready(server, address, { dev, ino }, options);
  }

  /**
   * A server already listening on a socket another process made (one
   * systemd passed): its socket file is never removed.
   */
  static adopt(server: Server, address: Address, options: ListenOptions = {}): Listener {
    return Listener.ready(server, address, undefined, options);
  }

  private static ready(server: Server, asked: Address, file: { dev: number; ino: number } | undefined, options: ListenOptions): Listener {
    server.on('error', (err: NodeJS.ErrnoException) => options.onError?.(err));
    const bound = server.address();
    const address: Address = asked.type === 'tcp' && bound && typeof bound === 'object' ? { type: 'tcp', host: asked.host, port: bound.port } : asked;
    return new Listener(server, address, file);
  }

  /**
   * Whether the file at its path is still the socket it created. Another
   * process may have put its own there since (QEMU replaces whatever is at
   * its socket path when it starts, and removes its path when it exits).
   */
  async ownsSocketFile(): Promise<boolean> {
    if (this.address.type !== 'unix' || !this.file) return false;
    const now = await lstat(this.address.path).catch(() => undefined);
    return now !== undefined && now.dev === this.file.dev && now.ino === this.file.ino;
  }

  /** Stops accepting; removes its unix socket file if that is still there. */
  async close(): Promise<void> {
    this.server.close();
    if (this.address.type === 'unix' && (await this.ownsSocketFile())) await unlink(this.address.path).catch(() => undefined);
  }
}

/**
 * Whether a unix socket can be created where `path` would be: one is bound
 * beside it under a temporary name and removed. Undefined, or why not.
 */
export async function probeBind(path: string): Promise<string | undefined> {
  const address: Address = { type: 'unix', path };
  const at = join(dirname(path), `.qmp-mux.${process.pid}.${randomBytes(4).toString('hex')}`);
  const server = createServer();
  try {
    await bind(server, address, { type: 'unix', path: at }, () => server.listen(at));
  } catch (e) {
    return (e as Error).message.replace(`cannot listen on ${formatAddress(address)}: `, '');
  }
  await new Promise<void>((r) => server.close(() => r()));
  return undefined;
}

function bind(server: Server, address: Address, at: Address, start: () => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new ListenError(`cannot listen on ${formatAddress(address)}: ${bindProblem(address, at, err)}`)));
    server.once('listening', resolve);
    start();
  });
}

/** What went wrong, in terms of the user's address rather than a temporary name. */
function bindProblem(address: Address, at: Address, err: NodeJS.ErrnoException): string {
  if (address.type === 'unix' && ['ENOENT', 'ENOTDIR', 'EACCES', 'EPERM', 'EROFS'].includes(err.code ?? '')) {
    // libuv reports a missing directory as EACCES: look at the directory itself.
    const dir = dirname(address.path);
    const info = statSyncOrUndefined(dir);
    if (!info) return `directory ${dir} does not exist`;
    if (!info.isDirectory()) return `${dir} is not a directory`;
    return `no permission to create a socket in ${dir}`;
  }
  if (err.code === 'EADDRINUSE') return 'the address is in use';
  if (err.code === 'EADDRNOTAVAIL') return 'no such address on this machine';
  const temporary = at.type === 'unix' ? at.path : undefined;
  return temporary === undefined || address.type !== 'unix' ? err.message : err.message.split(temporary).join(address.path);
}

function statSyncOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

async function clearStaleSocket(path: string): Promise<void> {
  const problem = await socketPathProblem(path);
  if (problem !== undefined) throw new ListenError(`cannot listen on unix:${path}: ${problem}`);
  await unlink(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
  });
}

/**
 * What stands in the way of listening at unix socket `path`: undefined when
 * nothing does (no file, or a socket nobody listens on, left by a process
 * that died), else why not.
 */
export async function socketPathProblem(path: string): Promise<string | undefined> {
  const info = await lstat(path).catch(() => undefined);
  if (!info) return undefined;
  if (!info.isSocket()) return 'a file that is not a socket is in the way';
  if (await answers(path)) return 'another process is listening there';
  return undefined;
}

/** Whether something accepts connections on unix socket `path`. */
export function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}
