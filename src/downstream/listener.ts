import { chmod, chown, lstat, rename, unlink } from 'node:fs/promises';
import { createConnection, createServer, isIP, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import type { SocketOptions } from '../config/options.ts';
import { ListenError } from '../errors.ts';
import { formatAddress, type Address } from '../net/address.ts';
import { resolveId } from './owner.ts';

/** The socket file each unix listener created, so that it removes that file and no other. */
const socketFiles = new WeakMap<Server, { dev: number; ino: number }>();

/** The longest unix socket path the kernel takes (`sun_path` less its NUL). */
const MAX_SOCKET_PATH = 107;
let bindings = 0;

/**
 * Listens on `address`. A unix socket file left behind by a dead process is
 * replaced; one that a live process answers on is an error, never stolen.
 * Unix sockets get the given mode (0600 by default) and owner.
 */
export async function listen(address: Address, onConnection: (socket: Socket) => void, socket?: SocketOptions): Promise<Server> {
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, onConnection);
  if (address.type === 'tcp') {
    await bind(server, address, () => server.listen(address.port, address.host));
    return server;
  }
  const path = address.path;
  await clearStaleSocket(path);
  // Bound at a fresh name beside `path`, then renamed into place: clients
  // never see the socket before it has its mode and owner, and Node, which
  // removes a unix socket by the name it was bound to when its server
  // closes, never removes a file another process has put at `path` since.
  // A path too long to have a longer name beside it is bound in place.
  const fresh = join(dirname(path), `.qmp-mux.${process.pid}.${++bindings}`);
  const at = Buffer.byteLength(fresh) <= MAX_SOCKET_PATH ? fresh : path;
  if (at !== path) await unlink(at).catch(() => undefined);
  await bind(server, address, () => server.listen(at));
  try {
    await chmod(at, socket?.mode ?? 0o600);
    if (socket?.owner !== undefined || socket?.group !== undefined) {
      const uid = socket.owner === undefined ? -1 : resolveId('user', socket.owner);
      const gid = socket.group === undefined ? -1 : resolveId('group', socket.group);
      await chown(at, uid, gid);
    }
    if (at !== path) await rename(at, path);
  } catch (e) {
    server.close();
    await unlink(at).catch(() => undefined);
    throw new ListenError(`cannot set up unix:${path}: ${(e as Error).message}`);
  }
  const { dev, ino } = await lstat(path);
  socketFiles.set(server, { dev, ino });
  return server;
}

function bind(server: Server, address: Address, start: () => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new ListenError(`cannot listen on ${formatAddress(address)}: ${err.message}`)));
    server.once('listening', resolve);
    start();
  });
}

/**
 * Whether the file at `path` is still the socket `server` created. Another
 * process may have put its own there since (QEMU replaces whatever is at its
 * socket path when it starts, and removes its path when it exits).
 */
export async function ownsSocketFile(server: Server, path: string): Promise<boolean> {
  const created = socketFiles.get(server);
  const now = await lstat(path).catch(() => undefined);
  return created !== undefined && now !== undefined && now.dev === created.dev && now.ino === created.ino;
}

/** Stops `server` accepting and removes its unix socket file, if it has one still there. */
export async function closeListener(server: Server, address: Address): Promise<void> {
  server.close();
  if (address.type === 'unix' && (await ownsSocketFile(server, address.path))) await unlink(address.path).catch(() => undefined);
}

/** The address a server really listens on (the port, when 0 was asked for). */
export function boundAddress(server: Server, asked: Address): Address {
  const a = server.address();
  if (asked.type === 'tcp' && a && typeof a === 'object') return { type: 'tcp', host: asked.host, port: a.port };
  return asked;
}

/** Whether a TCP host is reachable only from this machine. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || /^::ffff:127\./i.test(host);
}

async function clearStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch {
    return;
  }
  if (!isSocket) throw new ListenError(`cannot listen on unix:${path}: a file that is not a socket is in the way`);
  if (await answers(path)) throw new ListenError(`cannot listen on unix:${path}: another process is listening there`);
  await unlink(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
  });
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
