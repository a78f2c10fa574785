import { constants } from 'node:os';
import { resolve } from 'node:path';
import { loadConfigFile } from '../config/file.ts';
import { defaultEndpoint, type Options } from '../config/options.ts';
import { resolveOptions } from '../config/resolve.ts';
import { QmpMuxError } from '../errors.ts';
import type { Endpoint } from '../downstream/endpoint.ts';
import { createLogger, type Logger } from '../log.ts';
import { formatAddress, type Address } from '../net/address.ts';
import { matchSockets, takeActivation } from '../net/systemd.ts';
import { Proxy } from '../proxy/proxy.ts';
import { Dialer, type UpstreamSource } from '../upstream/dialer.ts';
import { QemuProcess, type QemuExit } from '../upstream/qemu-process.ts';
import { reclaim, takeOver, type Takeover } from '../upstream/takeover.ts';
import { UpstreamListener } from '../upstream/upstream-listener.ts';
import { VERSION } from '../version.ts';
import { parseArgs, USAGE } from './args.ts';

function connectHint(a: Address): string {
  if (a.type === 'unix') return `socat - UNIX-CONNECT:${a.path}`;
  return `socat - TCP:${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}

/** Exit status for a QEMU that ended: its own code, or 128 + signal number, as shells report it. */
function exitStatus(exit: QemuExit): number {
  if (exit.code !== null) return exit.code;
  return 128 + (exit.signal ? constants.signals[exit.signal] : 0);
}

/** Runs `read`; a QmpMuxError becomes a message naming the problem and exit status 2. */
function orUsageError<T>(read: () => T): T | number {
  try {
    return read();
  } catch (e) {
    if (!(e instanceof QmpMuxError)) throw e;
    process.stderr.write(`qmp-mux: ${e.message}\n${e.code === 'QMPMUX_USAGE' ? `\n${USAGE}` : ''}`);
    return 2;
  }
}

const TAKEOVER_ENDPOINT = 'takeover';

/**
 * The upstream source, and a takeover to undo at exit. `served` gives the
 * endpoints once they listen; until then there is nothing to reclaim.
 */
async function upstreamSource(
  options: Options,
  log: Logger,
  onQemuExit: (exit: QemuExit) => void,
  served: () => Endpoint[] | undefined,
): Promise<{ source: UpstreamSource; takeover?: Takeover }> {
  const u = options.upstream;
  switch (u.mode) {
    case 'connect': {
      if (!u.takeover || u.address.type !== 'unix') return { source: new Dialer(u.address, options.backoff, log) };
      const takeover = await takeOver(u.address.path);
      log.info('took over QEMU\'s socket', { socket: takeover.original, movedTo: takeover.moved });
      const endpoint = defaultEndpoint(TAKEOVER_ENDPOINT, { type: 'unix', path: takeover.original });
      endpoint.socket = takeover.socket;
      options.endpoints.push(endpoint);
      // While QEMU is away, a QEMU restarting (or exiting) takes the original path: take it back.
      const takeBack = async (): Promise<void> => {
        const serving = served()?.find((e) => e.name === TAKEOVER_ENDPOINT);
        if (serving && (await reclaim(takeover, serving))) log.info('took QEMU\'s socket path back', { socket: takeover.original, movedTo: takeover.moved });
      };
      return { source: new Dialer({ type: 'unix', path: takeover.moved }, options.backoff, log, 0, takeBack), takeover };
    }
    case 'listen': {
      const listener = new UpstreamListener(u.address, log);
      await listener.open();
      return { source: listener };
    }
    case 'spawn':
      return { source: new QemuProcess(u, log, onQemuExit) };
  }
}

/** Runs the proxy with the given arguments; resolves with the exit status. */
export async function runProxy(argv: string[]): Promise<number> {
  const cli = orUsageError(() => parseArgs(argv));
  if (typeof cli === 'number') return cli;
  if (cli.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (cli.version) {
    process.stdout.write(`qmp-mux ${VERSION}\n`);
    return 0;
  }
  const options = orUsageError(() => resolveOptions(cli, cli.config ? loadConfigFile(cli.config) : undefined));
  if (typeof options === 'number') return options;
  if (cli.checkConfig) {
    process.stdout.write(`qmp-mux: configuration ${cli.config ?? '(defaults and command line)'} is valid\n`);
    return 0;
  }
  const log = createLogger(options.log);
  const activation = orUsageError(() => takeActivation());
  if (typeof activation === 'number') return activation;
  if (activation.kind === 'not-ours') {
    log.warn('the sockets systemd passed are for another process, not used (run qmp-mux itself, not through npm or a shell)', { listenPid: activation.pid, pid: process.pid });
  }
  const sockets = activation.kind === 'sockets' ? activation.sockets : [];
  const inherited = orUsageError(() => matchSockets(options.endpoints.map((e) => e.name), sockets));
  if (typeof inherited === 'number') return inherited;

  let finish: (status: number) => void = () => undefined;
  const finished = new Promise<number>((r) => (finish = r));
  let proxy: Proxy | undefined;
  let takeover: Takeover | undefined;
  let stopping = false;
  const stop = async (status: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await proxy?.stop();
    await takeover?.restore();
    finish(status);
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      log.info('stopping', { signal });
      void stop(0);
    });
  }

  try {
    let endpoints: Endpoint[] | undefined;
    const upstream = await upstreamSource(options, log, (exit) => void stop(exitStatus(exit)), () => (stopping ? undefined : endpoints));
    takeover = upstream.takeover;
    proxy = new Proxy(options, upstream.source, log, inherited);
    endpoints = await proxy.start();
    for (const e of endpoints) {
      const a = e.address;
      const where = a.type === 'unix' ? `unix:${resolve(a.path)}` : formatAddress(a);
      process.stdout.write(`qmp-mux: clients connect at ${where}  (try: ${connectHint(a)})\n`);
    }
  } catch (e) {
    if (!(e instanceof QmpMuxError)) throw e;
    log.error(e.message);
    await stop(1);
  }
  return finished;
}
