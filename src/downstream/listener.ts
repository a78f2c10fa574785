import { chmod, lstat, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { ListenError } from '../errors.ts';
import { formatAddress, type Address } from '../net/address.ts';

/**
 * Listens on `address`. A unix socket file left behind by a dead process is
 * replaced; one that a live process answers on is an error, never stolen.
 * Unix sockets get mode 0600 unless told otherwise.
 */
export async function listen(address: Address, onConnection: (socket: Socket) => void, mode = 0o600): Promise<Server> {
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, onConnection);
  if (address.type === 'unix') await clearStaleSocket(address.path);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new ListenError(`cannot listen on ${formatAddress(address)}: ${err.message}`)));
    if (address.type === 'unix') server.listen(address.path, resolve);
    else server.listen(address.port, address.host, resolve);
  });
  if (address.type === 'unix') await chmod(address.path, mode);
  return server;
}

/** The address a server really listens on (the port, when 0 was asked for). */
export function boundAddress(server: Server, asked: Address): Address {
  const a = server.address();
  if (asked.type === 'tcp' && a && typeof a === 'object') return { type: 'tcp', host: asked.host, port: a.port };
  return asked;
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

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}
