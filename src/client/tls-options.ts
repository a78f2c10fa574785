import { UsageError } from '../errors.ts';
import type { TlsVersion } from '../net/tls.ts';
import { clientAddress, formatServerAddress, type ServerAddress } from './address.ts';

/** How a client connects to a `tls:` address: PEM files, read when it connects. */
export interface QmpTlsOptions {
  /** The client certificate to present (then any intermediates); with `key`. */
  cert?: string;
  /** Its private key, unencrypted. */
  key?: string;
  /** CA certificates the server's certificate must chain to; default: Node's bundled roots. */
  ca?: string;
  /** The name the server's certificate must carry; default: the host connected to. */
  serverName?: string;
  /** The oldest protocol accepted; default TLSv1.2. */
  minVersion?: TlsVersion;
}

/** The options `exec`, `events` and `shell` take for TLS. */
export const TLS_OPTIONS = {
  cert: { names: ['--cert'], value: true },
  key: { names: ['--key'], value: true },
  ca: { names: ['--ca'], value: true },
  serverName: { names: ['--server-name'], value: true },
} as const;

/** Their lines in a subcommand's `--help`, descriptions starting at `column` and wrapped within 80 columns, as the others. */
export function tlsUsage(column: number): string {
  const lines: [string, string][] = [
    ['--cert FILE --key FILE', 'with tls:, the client certificate and its key (PEM)'],
    ['--ca FILE', "with tls:, the CA certificates the server's must chain to (default: the system's)"],
    ['--server-name NAME', "with tls:, the name the server's certificate must carry (default: HOST)"],
  ];
  const indent = ' '.repeat(column);
  return lines
    .map(([option, what]) => {
      const rows: string[] = [];
      for (const word of what.split(' ')) {
        const last = rows.length - 1;
        if (last >= 0 && column + (rows[last] ?? '').length + 1 + word.length <= 80) rows[last] += ` ${word}`;
        else rows.push(word);
      }
      // An option wider than its column gets its description on the lines below.
      const head = `  ${option}`;
      const first = head.length < column ? `${head.padEnd(column)}${rows.shift() ?? ''}\n` : `${head}\n`;
      return first + rows.map((row) => `${indent}${row}\n`).join('');
    })
    .join('');
}

/** The TLS options given on a command line, for `address`; throws UsageError when they do not go with it. */
export function tlsPlan(values: Partial<Record<keyof typeof TLS_OPTIONS, string>>, address: ServerAddress): QmpTlsOptions | undefined {
  const given = Object.fromEntries(Object.entries(values).filter(([key, value]) => key in TLS_OPTIONS && value !== undefined)) as QmpTlsOptions;
  if (Object.keys(given).length === 0) return undefined;
  if (address.type !== 'tls') throw new UsageError(`--cert, --key, --ca and --server-name go with a tls:HOST:PORT address (not ${formatServerAddress(address)})`);
  if ((given.cert === undefined) !== (given.key === undefined)) throw new UsageError('give --cert and --key together');
  return given;
}

/** Where a subcommand connects, and the TLS options it connects with. */
export interface ServerTarget {
  address: ServerAddress;
  tls: QmpTlsOptions | undefined;
}

/**
 * Where a subcommand connects: `given` (else `$QMP_SOCKET`, else qmp-mux's
 * default endpoint), with the TLS options of its command line checked
 * against it.
 */
export function serverTarget(values: Partial<Record<keyof typeof TLS_OPTIONS, string>>, given: string | undefined, env: NodeJS.ProcessEnv): ServerTarget {
  const address = clientAddress(given, env);
  return { address, tls: tlsPlan(values, address) };
}
