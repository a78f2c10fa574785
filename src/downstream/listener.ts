import { chmod, chown, lstat, unlink } from 'node:fs/promises';
import { createConnection, createServer, isIP, type Server, type Socket } from 'node:net';
import type { SocketOptions } from '../config/options.ts';
import { ListenError } from '../errors.ts';
import { formatAddress, type Address } from '../net/address.ts';
import { resolveId } from './owner.ts';

/**
 * Listens on `address`. A unix socket file left behind by a dead process is
 * replaced; one that a live process answers on is an error, never stolen.
 * Unix sockets get the given mode (0600 by default) and owner.
 */
export async function listen(address: Address, onConnection: (socket: Socket) => void, socket?: SocketOptions): Promise<Server> {
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, onConnection);
  if (address.type === 'unix') await clearStaleSocket(address.path);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new ListenError(`cannot listen on ${formatAddress(address)}: ${err.message}`)));
    if (address.type === 'unix') server.listen(address.path, resolve);
    else server.listen(address.port, address.host, resolve);
  });
  if (address.type === 'unix') {
    try {
      await chmod(address.path, socket?.mode ?? 0o600);
      if (socket?.owner !== undefined || socket?.group !== undefined) {
        const uid = socket.owner === undefined ? -1 : resolveId('user', socket.owner);
        const gid = socket.group === undefined ? -1 : resolveId('group', socket.group);
        await chown(address.path, uid, gid);
      }
    } catch (e) {
      server.close();
      await unlink(address.path).catch(() => undefined);
      throw new ListenError(`cannot set up unix:${address.path}: ${(e as Error).message}`);
    }
  }
  return server;
}

/** Stops `server` accepting and removes its unix socket file, if it has one. */
export async function closeListener(server: Server, address: Address): Promise<void> {
  server.close();
  if (address.type === 'unix') await unlink(address.path).catch(() => undefined);
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
  await unlink(path);
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
