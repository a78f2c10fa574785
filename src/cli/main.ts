#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { DEFAULT_BACKOFF, DEFAULT_LIMITS, DEFAULT_LISTEN, DEFAULT_WINDOW, EMBEDDED_QEMU, type Options } from '../config/options.ts';
import { ListenError, UsageError } from '../errors.ts';
import { createLogger } from '../log.ts';
import { formatAddress, type Address } from '../net/address.ts';
import { Proxy } from '../proxy/proxy.ts';
import { Dialer, type UpstreamSource } from '../upstream/dialer.ts';
import { QemuProcess, type QemuExit } from '../upstream/qemu-process.ts';
import { parseArgs, USAGE, type CommandLine } from './args.ts';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function optionsFrom(cli: CommandLine): Options {
  const listen = cli.listen.length > 0 ? cli.listen : [DEFAULT_LISTEN];
  return {
    upstream: cli.upstream ? { mode: 'connect', address: cli.upstream } : { mode: 'spawn', command: cli.qemu ?? [...EMBEDDED_QEMU] },
    endpoints: listen.map((address, i) => ({ name: listen.length > 1 ? `listen${i}` : 'default', address })),
    window: DEFAULT_WINDOW,
    limits: { ...DEFAULT_LIMITS },
    backoff: { ...DEFAULT_BACKOFF },
    log: { level: cli.logLevel ?? 'info', format: cli.logFormat ?? 'text', trace: cli.trace },
  };
}

function connectHint(a: Address): string {
  if (a.type === 'unix') return `socat - UNIX-CONNECT:${a.path}`;
  return `socat - TCP:${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}

/** Exit status for a QEMU that ended: its own code, or 128 + signal number, as shells report it. */
function exitStatus(exit: QemuExit): number {
  if (exit.code !== null) return exit.code;
  const signals: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGSEGV: 11, SIGTERM: 15, SIGABRT: 6 };
  return 128 + (exit.signal ? signals[exit.signal] ?? 0 : 0);
}

async function main(argv: string[]): Promise<number> {
  let cli: CommandLine;
  try {
    cli = parseArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`qmp-mux: ${e.message}\n\n${USAGE}`);
    return 2;
  }
  if (cli.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (cli.version) {
    process.stdout.write(`qmp-mux ${version()}\n`);
    return 0;
  }
  const options = optionsFrom(cli);
  const log = createLogger(options.log);

  let finish: (status: number) => void = () => undefined;
  const finished = new Promise<number>((r) => (finish = r));
  let proxy: Proxy | undefined;
  let stopping = false;
  const stop = async (status: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await proxy?.stop();
    finish(status);
  };

  let source: UpstreamSource;
  if (options.upstream.mode === 'connect') {
    source = new Dialer(options.upstream.address, options.backoff, log);
  } else {
    source = new QemuProcess(options.upstream.command, log, (exit) => void stop(exitStatus(exit)));
  }
  proxy = new Proxy(options, source, log);

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      log.info('stopping', { signal });
      void stop(0);
    });
  }

  try {
    const endpoints = await proxy.start();
    for (const e of endpoints) {
      const where = e.address.type === 'unix' ? `unix:${resolve(e.address.path)}` : formatAddress(e.address);
      process.stdout.write(`qmp-mux: clients connect at ${where}  (try: ${connectHint(e.address)})\n`);
    }
  } catch (e) {
    if (!(e instanceof ListenError)) throw e;
    log.error(e.message);
    await stop(1);
  }
  return finished;
}

main(process.argv.slice(2)).then(
  (status) => process.exit(status),
  (err: unknown) => {
    process.stderr.write(`qmp-mux: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(70);
  },
);
