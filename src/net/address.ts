import { isIP } from 'node:net';
import { AddressError } from '../errors.ts';

/** A socket address as written on the command line and in the config file. */
export type Address = { type: 'unix'; path: string } | { type: 'tcp'; host: string; port: number };

/** Parses `unix:PATH` or `tcp:HOST:PORT` (`tcp:[::1]:PORT` for IPv6). */
export function parseAddress(text: string): Address {
  if (text.startsWith('unix:')) {
    const path = text.slice(5);
    if (path === '') throw new AddressError(`'${text}': unix: needs a socket path`);
    return { type: 'unix', path };
  }
  if (text.startsWith('tcp:')) {
    const rest = text.slice(4);
    const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(rest);
    if (!m) throw new AddressError(`'${text}': expected tcp:HOST:PORT`);
    const host = m[1] ?? m[2] ?? '';
    const port = Number(m[3]);
    if (host === '') throw new AddressError(`'${text}': tcp: needs a host`);
    if (m[1] !== undefined && isIP(host) !== 6) throw new AddressError(`'${text}': '${host}' is not an IPv6 address`);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new AddressError(`'${text}': port must be 0-65535`);
    return { type: 'tcp', host, port };
  }
  throw new AddressError(`'${text}': expected unix:PATH or tcp:HOST:PORT`);
}

export function formatAddress(a: Address): string {
  if (a.type === 'unix') return `unix:${a.path}`;
  return isIP(a.host) === 6 ? `tcp:[${a.host}]:${a.port}` : `tcp:${a.host}:${a.port}`;
}

/** Whether a TCP host is reachable only from this machine. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || /^::ffff:127\./i.test(host);
}
