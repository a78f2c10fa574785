import type { Socket } from 'node:net';

/**
 * The socket to close to make room among `sockets` (oldest first): the
 * oldest of the peer address that holds the most, so one peer opening
 * connections cannot push out everyone else's.
 */
export function evictionVictim(sockets: Iterable<Socket>): Socket | undefined {
  const byAddress = new Map<string, Socket[]>();
  for (const socket of sockets) {
    const address = socket.remoteAddress ?? '';
    const list = byAddress.get(address);
    if (list) list.push(socket);
    else byAddress.set(address, [socket]);
  }
  let most: Socket[] = [];
  for (const list of byAddress.values()) if (list.length > most.length) most = list;
  return most[0];
}
