import { parseAddress, type Address } from '../net/address.ts';

/** Where `exec`, `events` and `shell` connect when neither `--connect` nor `$QMP_SOCKET` says: qmp-mux's default endpoint. */
const DEFAULT_CLIENT_ADDRESS = 'unix:qmp-mux.sock';

/**
 * A server address: `unix:PATH`, `tcp:HOST:PORT`, `HOST:PORT` (`[V6]:PORT`),
 * or a bare path, taken for a unix socket (what qmp-shell and `$QMP_SOCKET`
 * users are used to) unless it starts like another scheme (`udp:...`). As
 * with qmp-shell, text with one colon followed by digits only is HOST:PORT:
 * a socket file named so is written `./vm:4444`. Throws AddressError naming
 * the text.
 */
export function parseClientAddress(text: string): Address {
  if (/^(?:[^:/[\]]+|\[[^\]]+\]):\d+$/.test(text)) return parseAddress(`tcp:${text}`);
  if (text === '' || /^[A-Za-z][A-Za-z0-9+.-]*:/.test(text)) return parseAddress(text);
  return { type: 'unix', path: text };
}

/** The address given on the command line, else `$QMP_SOCKET`, else the default. */
export function clientAddress(option: string | undefined, env: NodeJS.ProcessEnv): Address {
  return parseClientAddress(option ?? (env.QMP_SOCKET || DEFAULT_CLIENT_ADDRESS));
}
