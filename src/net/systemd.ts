import type { Server, Socket } from 'node:net';
import { ActivationError, ListenError } from '../errors.ts';
import { formatAddress, type Address } from './address.ts';
import { plainServer, type ServerMaker } from './unix-socket.ts';

/**
 * systemd's socket activation (sd_listen_fds(3)): the service manager, or
 * `systemd-socket-activate`, opens the listening sockets and passes them as
 * descriptors 3, 4, ... with LISTEN_PID (the process they are for),
 * LISTEN_FDS (how many) and LISTEN_FDNAMES (their names, `:`-separated).
 */

/** The first descriptor passed (SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3;

/**
 * More descriptors than any socket unit passes; a bogus LISTEN_FDS cannot
 * make qmp-mux build a huge list.
 */
export const MAX_LISTEN_FDS = 65536;

/** Every variable of the protocol; LISTEN_PIDFDID comes from systemd 254 on. */
const VARIABLES = ['LISTEN_PID', 'LISTEN_PIDFDID', 'LISTEN_FDS', 'LISTEN_FDNAMES'] as const;

/** The name a descriptor has when LISTEN_FDNAMES is not set, as sd_listen_fds_with_names(3) says. */
const UNNAMED = 'unknown';

/** A listening socket passed by systemd: its descriptor and its name (`FileDescriptorName=`, `--fdname=`). */
export interface InheritedSocket {
  fd: number;
  name: string;
}

/** What the environment says about sockets passed to this process. */
export type Activation =
  /** None passed: no LISTEN_PID, or no LISTEN_FDS. */
  | { kind: 'none' }
  /** LISTEN_PID is another process's: the sockets were meant for it (a wrapper that did not exec qmp-mux). */
  | { kind: 'not-ours'; pid: number }
  | { kind: 'sockets'; sockets: InheritedSocket[] };

export type Environment = Record<string, string | undefined>;

/**
 * Reads the socket activation variables from `env` for process `pid`, as
 * sd_listen_fds_with_names(3) does. Numbers are plain decimal, as systemd
 * writes them. LISTEN_PIDFDID cannot be checked without pidfds, which
 * Node.js does not have; like libsystemd without them, qmp-mux relies on
 * LISTEN_PID. Throws ActivationError naming the variable.
 */
export function readActivation(env: Readonly<Environment>, pid: number): Activation {
  const listenPid = env.LISTEN_PID;
  if (listenPid === undefined) return { kind: 'none' };
  const owner = decimal('LISTEN_PID', listenPid, 'a process id');
  if (owner !== pid) return { kind: 'not-ours', pid: owner };
  const pidfdId = env.LISTEN_PIDFDID;
  if (pidfdId !== undefined) decimal('LISTEN_PIDFDID', pidfdId, 'a pidfd inode number');
  const fds = env.LISTEN_FDS;
  if (fds === undefined) return { kind: 'none' };
  const count = decimal('LISTEN_FDS', fds, `a number of descriptors, 1 to ${MAX_LISTEN_FDS}`, MAX_LISTEN_FDS);
  const text = env.LISTEN_FDNAMES;
  // libsystemd splits "" into no names at all, and "a::b" into three.
  const names = text === undefined ? Array<string>(count).fill(UNNAMED) : text === '' ? [] : text.split(':');
  if (names.length !== count) {
    throw new ActivationError(`LISTEN_FDNAMES: ${names.length} name${names.length === 1 ? '' : 's'} for ${count} descriptor${count === 1 ? '' : 's'} (LISTEN_FDS=${fds}): ${JSON.stringify(text)}`);
  }
  return { kind: 'sockets', sockets: names.map((name, i) => ({ fd: LISTEN_FDS_START + i, name })) };
}

/**
 * `readActivation`, then removes the variables from `env` whatever they
 * said, as sd_listen_fds(unset_environment=1) does: a QEMU qmp-mux starts
 * inherits its environment, and must not take qmp-mux's sockets, or the
 * names of sockets it does not have, for its own.
 */
export function takeActivation(env: Environment = process.env, pid: number = process.pid): Activation {
  try {
    return readActivation(env, pid);
  } finally {
    for (const name of VARIABLES) delete env[name];
  }
}

/**
 * Which endpoint gets which socket: the one named after it. A socket named
 * after no endpoint is an error (a client connecting to it would wait for
 * ever), and so are two with one name. Endpoints without a socket listen on
 * their own address.
 */
export function matchSockets(endpoints: readonly string[], sockets: readonly InheritedSocket[]): Map<string, InheritedSocket> {
  const matched = new Map<string, InheritedSocket>();
  for (const socket of sockets) {
    if (!endpoints.includes(socket.name)) {
      throw new ActivationError(
        `the socket systemd passed as fd ${socket.fd} is named '${socket.name}', and no endpoint has that name (endpoints: ${endpoints.join(', ')}); ` +
          'name it after its endpoint: FileDescriptorName= in the socket unit, --fdname= with systemd-socket-activate',
      );
    }
    const twin = matched.get(socket.name);
    if (twin) {
      throw new ActivationError(
        `the sockets systemd passed as fds ${twin.fd} and ${socket.fd} are both named '${socket.name}'; an endpoint takes one socket: ` +
          'give each its own FileDescriptorName= (one socket unit each)',
      );
    }
    matched.set(socket.name, socket);
  }
  return matched;
}

/**
 * Accepts connections on an inherited socket, with the options of every
 * qmp-mux listener. Node.js refuses anything but a unix or TCP stream
 * socket (EINVAL; ENOTSOCK for a FIFO), and listens on a stream socket that
 * was only bound. The socket must be of `endpoint`'s family. Resolves with
 * the address it has: a TCP socket's own; for a unix socket, `endpoint`
 * (Node.js cannot read a unix socket's path back, so it is not checked).
 * The socket file stays systemd's: closing the server never removes it.
 * `makeServer` makes the server (a TLS one, say).
 */
export function listenInherited(
  socket: InheritedSocket,
  endpoint: Address,
  onConnection: (socket: Socket) => void,
  makeServer: ServerMaker = plainServer,
): Promise<{ server: Server; address: Address }> {
  const server = makeServer(onConnection);
  const passed = `the socket systemd passed as '${socket.name}' (fd ${socket.fd})`;
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new ListenError(`cannot listen on ${passed}: ${err.message}; it must be a stream socket (ListenStream=)`)));
    server.listen({ fd: socket.fd }, () => {
      // Node.js reads a TCP socket's address, and has nothing for a unix one.
      const own = server.address();
      const tcp: Address | undefined = own !== null && typeof own === 'object' ? { type: 'tcp', host: own.address, port: own.port } : undefined;
      if ((tcp?.type ?? 'unix') === endpoint.type) {
        resolve({ server, address: tcp ?? endpoint });
        return;
      }
      server.close();
      const kind = tcp ? `a TCP socket (${formatAddress(tcp)})` : 'a unix socket';
      reject(new ListenError(`endpoint '${socket.name}' is ${formatAddress(endpoint)}, but ${passed} is ${kind}`));
    });
  });
}

/** A positive decimal number up to `max`, as systemd writes them (at most 20 digits: a u64). */
function decimal(variable: string, text: string, what: string, max = Infinity): number {
  const n = Number(text);
  if (!/^[1-9][0-9]{0,19}$/.test(text) || n > max) throw new ActivationError(`${variable}: expected ${what}, got ${JSON.stringify(text)}`);
  return n;
}
