import { statSync, type Stats } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { ValueError } from '../errors.ts';
import { DEFAULT_MIN_TLS_VERSION, readCredentials, tlsConnectOptions } from '../net/tls.ts';
import { formatServerAddress, type ServerAddress } from './address.ts';
import type { QmpTlsOptions } from './tls-options.ts';

/** A client's connection to a server, plain or TLS, and what its failures mean to a person. */

/** What the TLS files are called in messages: the options of the client tools. */
const TLS_NAMES = { cert: '--cert', key: '--key', ca: '--ca' };

/** A socket on its way to `to`: plain, or TLS with the files of `tls` (read now). */
export function openSocket(to: ServerAddress, tls: QmpTlsOptions | undefined): Socket {
  if (to.type === 'unix') {
    if (tls) throw new ValueError(`TLS options go with a tls:HOST:PORT address (not ${formatServerAddress(to)})`);
    return createConnection(to.path);
  }
  if (to.type === 'tcp') {
    if (tls) throw new ValueError(`TLS options go with a tls:HOST:PORT address (not ${formatServerAddress(to)})`);
    return createConnection({ host: to.host, port: to.port, noDelay: true });
  }
  const credentials = readCredentials({ cert: tls?.cert, key: tls?.key, ca: tls?.ca }, tls?.minVersion ?? DEFAULT_MIN_TLS_VERSION, TLS_NAMES);
  const socket = connectTls(tlsConnectOptions(to.host, to.port, tls?.serverName, credentials));
  socket.setNoDelay(true);
  return socket;
}

const SOCKET_ERRORS: Record<string, string> = {
  ENOENT: 'no such socket',
  ECONNREFUSED: 'connection refused (nothing is listening there)',
  EACCES: 'permission denied',
  ENOTSOCK: 'not a socket',
  ECONNRESET: 'the server closed the connection',
  EPIPE: 'the server closed the connection',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: 'the server requires a client certificate (--cert and --key)',
  ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE: 'the server refused the TLS handshake (a client certificate it requires, or a protocol version)',
  ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION: 'the server does not accept this TLS version',
  ERR_SSL_WRONG_VERSION_NUMBER: 'the server does not speak TLS there',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "the server's certificate is not signed by a CA this client trusts (--ca)",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "the server's certificate is not signed by a CA this client trusts (--ca)",
  SELF_SIGNED_CERT_IN_CHAIN: "the server's certificate is not signed by a CA this client trusts (--ca)",
  DEPTH_ZERO_SELF_SIGNED_CERT: "the server's certificate is self-signed, and not one this client trusts (--ca)",
  CERT_HAS_EXPIRED: "the server's certificate has expired",
};

/** A socket error at `to` in words, with its code. */
export function describeSocketError(e: NodeJS.ErrnoException, to: ServerAddress): string {
  // Connecting to a file that is not a socket is refused as if nobody listened there.
  const other = to.type === 'unix' && (e.code === 'ECONNREFUSED' || e.code === 'ENOTSOCK') ? notSocket(to.path) : undefined;
  const known = other ?? (e.code === undefined ? undefined : SOCKET_ERRORS[e.code]);
  return known === undefined ? e.message : `${known} (${e.code})`;
}

/** What is at `path` if it is there and not a socket, in words. */
function notSocket(path: string): string | undefined {
  let info: Stats | undefined;
  try {
    info = statSync(path);
  } catch {
    return undefined;
  }
  if (info.isSocket()) return undefined;
  const kind = info.isDirectory() ? 'a directory' : info.isFile() ? 'a regular file' : info.isFIFO() ? 'a FIFO' : 'a device';
  return `not a socket (${kind})`;
}
