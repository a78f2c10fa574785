import { constants } from 'node:os';
import { resolve } from 'node:path';
import { loadConfigFile } from '../config/file.ts';
import { describeMemoryBound } from '../config/memory.ts';
import type { Options } from '../config/options.ts';
import { preflight } from '../config/preflight.ts';
import { asConfigFile } from '../config/print.ts';
import { resolveOptions } from '../config/resolve.ts';
import { QmpMuxError } from '../errors.ts';
import { createLogger, type Logger } from '../log.ts';
import { Mux } from '../mux/mux.ts';
import { formatAddress, type Address } from '../net/address.ts';
import { matchSockets, takeActivation, type Activation, type InheritedSocket } from '../net/systemd.ts';
import { OpsServer } from '../ops/http-server.ts';
import { policyWarnings } from '../policy/warnings.ts';
import { createSource } from '../upstream/create-source.ts';
import type { QemuExit } from '../upstream/spawn-source.ts';
import { PROXY_EXIT } from '../exit-status.ts';
import { VERSION } from '../version.ts';
import { parseArgs, USAGE } from './args.ts';
import { RELOAD_SIGNAL, reloader } from './reload.ts';
import { takeNotifier, type SystemdNotifier } from './systemd-notify.ts';


const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
/** After an internal error, how much longer than the usual shutdown the stop may take before QEMU is killed. */
const FATAL_GRACE_MS = 15_000;

function connectHint(a: Address): string {
  // Absolute, as the address before it: the hint must work from another directory too.
  if (a.type === 'unix') return `socat - UNIX-CONNECT:${resolve(a.path)}`;
  return `socat - TCP:${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}

/** Exit status for a QEMU that ended: its own code, or 128 + signal number, as shells report it. */
function qemuExitStatus(exit: QemuExit): number {
  if (exit.code !== null) return exit.code;
  return 128 + (exit.signal ? constants.signals[exit.signal] : 0);
}

/** An error in one line: its message and where it was thrown. */
function oneLine(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const where = e.stack?.split('\n').find((l) => l.trim().startsWith('at '))?.trim();
  return where ? `${e.message} (${where})` : e.message;
}

/**
 * A closed stdout or stderr (qmp-mux piped into `head`, its terminal gone)
 * must never stop the proxy: write errors on them are dropped.
 */
function guardStdio(): void {
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
}

/** Runs the proxy with the given arguments; resolves with the exit status. */
export async function runProxy(argv: string[]): Promise<number> {
  guardStdio();
  let options: Options;
  let activation: Activation;
  let inherited: ReadonlyMap<string, InheritedSocket>;
  let load: () => Options;
  let notifier: SystemdNotifier | undefined;
  try {
    const cli = parseArgs(argv);
    load = () => resolveOptions(cli, cli.config ? loadConfigFile(cli.config) : undefined);
    if (cli.help) {
      process.stdout.write(USAGE);
      return PROXY_EXIT.ok;
    }
    if (cli.version) {
      process.stdout.write(`qmp-mux ${VERSION}\n`);
      return PROXY_EXIT.ok;
    }
    options = load();
    if (cli.printConfig) {
      process.stdout.write(`${JSON.stringify(asConfigFile(options), null, 2)}\n`);
      return PROXY_EXIT.ok;
    }
    activation = takeActivation();
    inherited = matchSockets(options.endpoints.map((e) => e.name), activation.kind === 'sockets' ? activation.sockets : []);
    await preflight(options, new Set(inherited.keys()));
    notifier = takeNotifier();
    if (cli.checkConfig) {
      for (const w of policyWarnings(options.endpoints)) process.stderr.write(`qmp-mux: warning: endpoint '${w.endpoint}': ${w.message}\n`);
      process.stdout.write(`qmp-mux: configuration ${cli.config ?? '(defaults and command line)'} is valid\n`);
      process.stdout.write(`qmp-mux: memory: ${describeMemoryBound(options)}\n`);
      return PROXY_EXIT.ok;
    }
  } catch (e) {
    if (!(e instanceof QmpMuxError)) throw e;
    process.stderr.write(`qmp-mux: ${e.message}\n${e.code === 'QMPMUX_USAGE' ? "try 'qmp-mux --help'\n" : ''}`);
    return PROXY_EXIT.config;
  }
  const log = createLogger(options.log);
  for (const w of policyWarnings(options.endpoints)) log.warn(w.message, { endpoint: w.endpoint });
  if (activation.kind === 'not-ours') {
    log.warn('the sockets systemd passed are for another process, not used (run qmp-mux itself, not through npm or a shell)', { listenPid: activation.pid, pid: process.pid });
  }
  notifier?.logTo(log);
  return serve(options, log, inherited, notifier, load);
}

/**
 * Serves until stopped. Every way out stops a QEMU qmp-mux started as
 * configured and removes the sockets it made: a signal (SIGTERM, SIGINT,
 * SIGHUP; a second one while stopping ends it at once), QEMU exiting, or
 * an internal error.
 */
async function serve(options: Options, log: Logger, inherited: ReadonlyMap<string, InheritedSocket>, notifier: SystemdNotifier | undefined, load: () => Options): Promise<number> {
  let finish: (status: number) => void = () => undefined;
  const finished = new Promise<number>((r) => (finish = r));
  let status: number = PROXY_EXIT.ok;
  let stopping = false;
  const source = createSource(options, { log, onQemuExit: (exit) => stop(qemuExitStatus(exit)) });
  const mux = new Mux(options, source, log, inherited);
  const ops =
    options.metrics &&
    new OpsServer({ metrics: () => mux.metrics.render(), notReady: () => mux.notReady(), status: () => mux.status() }, { address: options.metrics.listen, allowRemote: options.metrics.allowRemote, log });

  function stop(why: number): void {
    if (stopping) return;
    stopping = true;
    status = why;
    void notifier?.stopping('stopping');
    // The HTTP listener stays until the end: /readyz says the mux is stopping.
    mux.stop().then(() => ops?.stop()).then(() => notifier?.settled()).then(
      () => finish(status),
      (e: unknown) => {
        log.error('stopping failed', { error: oneLine(e) });
        source.abort();
        finish(PROXY_EXIT.internal);
      },
    );
  }

  for (const signal of STOP_SIGNALS) {
    process.on(signal, () => {
      if (!stopping) {
        log.info('stopping', { signal });
        stop(PROXY_EXIT.ok);
        return;
      }
      log.warn('stopping at once', { signal });
      source.abort();
      finish(PROXY_EXIT.failed);
    });
  }

  let failed = false;
  const fatal = (e: unknown): void => {
    log.error('internal error; stopping', { error: oneLine(e) });
    if (failed) return;
    failed = true;
    // Not unref()ed: it must fire even if the stop leaves nothing else to wait for.
    const deadline = setTimeout(() => {
      source.abort();
      finish(PROXY_EXIT.internal);
    }, options.timeouts.shutdownMs + FATAL_GRACE_MS);
    void finished.then(() => clearTimeout(deadline));
    stop(PROXY_EXIT.internal);
    status = PROXY_EXIT.internal;
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
  // For external rotation of the audit log (logrotate's postrotate).
  process.on('SIGUSR1', () => mux.audit?.reopen());
  process.on(RELOAD_SIGNAL, reloader({ load, mux, log, running: options, inherited: new Set(inherited.keys()) }));

  try {
    const endpoints = await mux.start();
    const http = await ops?.start();
    for (const e of endpoints) {
      const a = e.address;
      const where = a.type === 'unix' ? `unix:${resolve(a.path)}` : formatAddress(a);
      process.stdout.write(`qmp-mux: clients connect at ${where}  (try: ${connectHint(a)})\n`);
    }
    if (http) process.stdout.write(`qmp-mux: metrics at http://${http.host.includes(':') ? `[${http.host}]` : http.host}:${http.port}/metrics\n`);
    // Ready for systemd once every listener is open and QEMU is connected and negotiated.
    if (notifier) {
      const where = endpoints.map((e) => formatAddress(e.address)).join(', ');
      void mux.firstReady.then(() => (stopping ? undefined : notifier.ready(`QEMU connected; clients connect at ${where}`)));
    }
  } catch (e) {
    if (!(e instanceof QmpMuxError)) throw e;
    log.error(e.message);
    // What did start is stopped (a QEMU started, sockets made).
    await mux.stop();
    return e.code === 'QMPMUX_SPAWN' ? PROXY_EXIT.cannotExecute : PROXY_EXIT.failed;
  }
  return finished;
}
