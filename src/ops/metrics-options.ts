import { boolean, fail, object, optional, string } from '../config/fields.ts';
import { AddressError } from '../errors.ts';
import { formatAddress, isLoopback, parseAddress } from '../net/address.ts';
import type { TcpAddress } from './http-server.ts';

/** The HTTP listener for metrics and probes (config `"metrics"`, flag `--metrics`). */
export interface MetricsOptions {
  /** Where it listens; port 0 picks a free port. */
  listen: TcpAddress;
  /** Allow a host that is not loopback. Default false. */
  allowRemote: boolean;
}

/** Parses `tcp:HOST:PORT` for the metrics listener; throws AddressError for anything else. */
export function metricsAddress(text: string): TcpAddress {
  const a = parseAddress(text);
  if (a.type !== 'tcp') throw new AddressError(`'${text}': the metrics listener takes tcp:HOST:PORT (Prometheus scrapes over TCP)`);
  return a;
}

/** Reads the config file's `metrics` object: `{"listen": "tcp:127.0.0.1:9464", "allowRemote": false}`. */
export function readMetricsOptions(v: unknown, path: string): MetricsOptions {
  const m = object(v, path, ['listen', 'allowRemote']);
  const at = `${path}.listen`;
  let listen: TcpAddress;
  try {
    listen = metricsAddress(string(m.listen, at));
  } catch (e) {
    if (!(e instanceof AddressError)) throw e;
    return fail(at, e.message);
  }
  return { listen, allowRemote: optional(m, 'allowRemote', path, boolean) ?? false };
}

/**
 * The listener to run, if any: `--metrics` replaces the file's address and
 * keeps its `allowRemote`.
 */
export function resolveMetricsOptions(flag: TcpAddress | undefined, file: MetricsOptions | undefined): MetricsOptions | undefined {
  if (flag) return { listen: flag, allowRemote: file?.allowRemote ?? false };
  return file;
}

/**
 * Why the metrics listener may not listen at `address`: a host other
 * machines can reach, without `allowRemote`. Undefined when it may. The one
 * check, made by `--check-config` and again by the listener itself.
 */
export function metricsAddressProblem(address: TcpAddress, allowRemote: boolean): string | undefined {
  if (isLoopback(address.host) || allowRemote) return undefined;
  return `metrics (${formatAddress(address)}): not a loopback address; set allowRemote to expose it`;
}
