import { AddressError } from '../errors.ts';
import { formatAddress, parseAddress, type Address } from '../net/address.ts';

/** Where `exec`, `events` and `shell` connect when neither `--connect` nor `$QMP_SOCKET` says: qmp-mux's default endpoint. */
const DEFAULT_CLIENT_ADDRESS = 'unix:qmp-mux.sock';

/** Where a client connects: a unix socket, TCP, or TCP with TLS (`tls:HOST:PORT`). */
export type ServerAddress = Address | { type: 'tls'; host: string; port: number };

/**
 * A server address: `unix:PATH`, `tcp:HOST:PORT`, `tls:HOST:PORT`,
 * `HOST:PORT` (`[V6]:PORT`), or a bare path, taken for a unix socket (what
 * qmp-shell and `$QMP_SOCKET` users are used to) unless it starts like
 * another scheme (`udp:...`). As with qmp-shell, text with one colon
 * followed by digits only is HOST:PORT: a socket file named so is written
 * `./vm:4444`. Throws AddressError naming the text.
 */
export function parseClientAddress(text: string): ServerAddress {
  if (text.startsWith('tls:')) {
    let tcp: Address;
    try {
      tcp = parseAddress(`tcp:${text.slice(4)}`);
    } catch (e) {
      if (!(e instanceof AddressError)) throw e;
      throw new AddressError(`'${text}': expected tls:HOST:PORT`);
    }
    if (tcp.type !== 'tcp' || tcp.port === 0) throw new AddressError(`'${text}': expected tls:HOST:PORT`);
    return { type: 'tls', host: tcp.host, port: tcp.port };
  }
  if (/^(?:[^:/[\]]+|\[[^\]]+\]):\d+$/.test(text)) return parseAddress(`tcp:${text}`);
  if (/^(?:unix|tcp):/.test(text)) return parseAddress(text);
  if (text === '' || /^[A-Za-z][A-Za-z0-9+.-]*:/.test(text)) {
    throw new AddressError(`'${text}': expected unix:PATH, tcp:HOST:PORT, tls:HOST:PORT, HOST:PORT or a socket path${text === '' ? '' : ` (./${text} for a file of that name)`}`);
  }
  return { type: 'unix', path: text };
}

/** `unix:PATH`, `tcp:HOST:PORT` or `tls:HOST:PORT`. */
export function formatServerAddress(a: ServerAddress): string {
  return a.type === 'tls' ? `tls:${formatAddress({ ...a, type: 'tcp' }).slice(4)}` : formatAddress(a);
}

/** The address given on the command line, else `$QMP_SOCKET`, else the default. */
export function clientAddress(option: string | undefined, env: NodeJS.ProcessEnv): ServerAddress {
  return parseClientAddress(option ?? (env.QMP_SOCKET || DEFAULT_CLIENT_ADDRESS));
}
