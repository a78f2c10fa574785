import { boolean, fail, keysOf, object, optional, string, type Commented } from '../config/fields.ts';
import { AddressError } from '../errors.ts';
import { parseAddress } from '../net/address.ts';
import type { TcpAddress } from './http-server.ts';

/** The HTTP listener for metrics and probes (config `"metrics"`, flag `--metrics`). */
export interface MetricsOptions {
  /** Where it listens; port 0 picks a free port. */
  listen: TcpAddress;
  /** Allow a host that is not loopback. Default false. */
  allowRemote: boolean;
}

/** The configuration file's `metrics`. */
export interface MetricsConfig extends Commented {
  /** `tcp:HOST:PORT`; a host that is not loopback needs `allowRemote`. */
  listen: `tcp:${string}`;
  allowRemote?: boolean;
}

/** Parses `tcp:HOST:PORT` for the metrics listener; throws AddressError, naming what it takes, for anything else. */
export function metricsAddress(text: string): TcpAddress {
  const takes = 'the metrics listener takes tcp:HOST:PORT (Prometheus scrapes over TCP)';
  let a: ReturnType<typeof parseAddress>;
  try {
    a = parseAddress(text);
  } catch (e) {
    if (!(e instanceof AddressError)) throw e;
    // HOST:PORT without the scheme is the usual slip: say what was meant.
    const meant = /^(?:\[[^\]]+\]|[^:/]+):\d+$/.test(text) ? `; did you mean tcp:${text}?` : '';
    throw new AddressError(text.startsWith('tcp:') ? e.message : `'${text}': ${takes}${meant}`);
  }
  if (a.type !== 'tcp') throw new AddressError(`'${text}': ${takes}`);
  return a;
}

/** Reads the config file's `metrics` object: `{"listen": "tcp:127.0.0.1:9464", "allowRemote": false}`. */
export function readMetricsOptions(v: unknown, path: string): MetricsOptions {
  const m = object(v, path, keysOf<MetricsConfig>({ listen: true, allowRemote: true }));
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
