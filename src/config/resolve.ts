import { UsageError } from '../errors.ts';
import type { LogFormat, LogLevel } from '../log.ts';
import type { Address } from '../net/address.ts';
import type { TcpAddress } from '../ops/http-server.ts';
import type { StopPolicy } from '../upstream/source.ts';
import type { ConfigFile } from './file.ts';
import { resolveMetricsOptions } from './ops-fields.ts';
import { DEFAULT_LISTEN, DEFAULTS, EMBEDDED_QEMU, defaultEndpoint, type Options, type UpstreamOptions } from './options.ts';

/** What the command line says: the proxy's flags, read by cli/args.ts; what it leaves out comes from the file or the defaults. */
export interface CommandLine {
  help: boolean;
  version: boolean;
  config?: string;
  checkConfig: boolean;
  printConfig: boolean;
  upstream?: { mode: 'connect' | 'listen'; address: Address };
  takeover: boolean;
  listen: Address[];
  /** QEMU command line after `--`: spawn mode. */
  qemu?: string[];
  onStop?: StopPolicy;
  powerdownTimeoutMs?: number;
  logLevel?: LogLevel;
  logFormat?: LogFormat;
  trace: boolean;
  /** `--metrics`: the HTTP listener for metrics and probes. */
  metrics?: TcpAddress;
}

/** A command line that says nothing (the library's `startMux`). */
export const NO_COMMAND_LINE: Readonly<CommandLine> = Object.freeze({ help: false, version: false, checkConfig: false, printConfig: false, takeover: false, listen: [], trace: false });

/**
 * The options to run with: defaults, then the configuration file, then the
 * command line. Endpoints given with `--listen` are added to the file's;
 * with neither, there is one endpoint at `unix:qmp-mux.sock`, unless a
 * takeover serves clients at QEMU's path instead.
 */
export function resolveOptions(cli: CommandLine, file: ConfigFile | undefined): Options {
  const limits = file?.limits ?? { ...DEFAULTS.limits };
  const fromFile = file?.endpoints ?? [];
  const upstream = resolveUpstream(cli, file?.upstream);
  // A takeover serves clients at QEMU's own path: no default endpoint besides it.
  const takeover = upstream.mode === 'connect' && upstream.takeover;
  const listen = cli.listen.length > 0 || fromFile.length > 0 || takeover ? cli.listen : [DEFAULT_LISTEN];
  const taken = new Set(fromFile.map((e) => e.name));
  const added = listen.map((address, i) => {
    let name = listen.length === 1 && fromFile.length === 0 ? 'default' : `listen${i}`;
    while (taken.has(name)) name += '_';
    taken.add(name);
    const e = defaultEndpoint(name, address);
    e.limits = { ...limits };
    return e;
  });
  const endpoints = [...fromFile, ...added];
  if (cli.takeover && !(upstream.mode === 'connect' && upstream.address.type === 'unix')) {
    throw new UsageError('--takeover needs a unix socket upstream to connect to (--upstream unix:PATH)');
  }
  // The file's rule ("only applies with 'spawn'"), for the flags.
  if (upstream.mode !== 'spawn') {
    const flag = cli.onStop !== undefined ? '--on-stop' : cli.powerdownTimeoutMs !== undefined ? '--powerdown-timeout' : undefined;
    const how = upstream.mode === 'connect' ? 'it connects to' : 'that connects to it';
    if (flag) throw new UsageError(`${flag} only applies when qmp-mux starts QEMU (spawn), not to a QEMU ${how}`);
  }
  return {
    upstream,
    endpoints,
    window: file?.window ?? DEFAULTS.window,
    windowBytes: file?.windowBytes ?? DEFAULTS.windowBytes,
    totalInputBytes: file?.totalInputBytes ?? DEFAULTS.totalInputBytes,
    maxUpstreamMessage: file?.maxUpstreamMessage ?? DEFAULTS.maxUpstreamMessage,
    backoff: file?.backoff ?? { ...DEFAULTS.backoff },
    timeouts: file?.timeouts ?? { ...DEFAULTS.timeouts },
    log: {
      level: cli.logLevel ?? file?.log?.level ?? DEFAULTS.log.level,
      format: cli.logFormat ?? file?.log?.format ?? DEFAULTS.log.format,
      trace: cli.trace || (file?.log?.trace ?? DEFAULTS.log.trace),
    },
    journal: file?.journal ?? { ...DEFAULTS.journal },
    audit: file?.audit,
    metrics: resolveMetricsOptions(cli.metrics, file?.metrics),
  };
}

function resolveUpstream(cli: CommandLine, fromFile: UpstreamOptions | undefined): UpstreamOptions {
  const fileSpawn = fromFile?.mode === 'spawn' ? fromFile : undefined;
  const spawn = (command: readonly string[]): UpstreamOptions => ({
    mode: 'spawn',
    command: [...command],
    onStop: cli.onStop ?? fileSpawn?.onStop ?? DEFAULTS.spawn.onStop,
    powerdownTimeoutMs: cli.powerdownTimeoutMs ?? fileSpawn?.powerdownTimeoutMs ?? DEFAULTS.spawn.powerdownTimeoutMs,
  });
  if (cli.upstream?.mode === 'listen') return { mode: 'listen', address: cli.upstream.address };
  if (cli.upstream) return { mode: 'connect', address: cli.upstream.address, takeover: cli.takeover };
  if (cli.qemu) return spawn(cli.qemu);
  if (fromFile?.mode === 'connect') return { ...fromFile, takeover: fromFile.takeover || cli.takeover };
  if (fromFile?.mode === 'listen') return fromFile;
  return spawn(fileSpawn?.command ?? EMBEDDED_QEMU);
}
