#!/usr/bin/env node
import { runEvents } from '../client/events.ts';
import { runExec } from '../client/exec.ts';
import { runShell } from '../client/shell.ts';
import { PROXY_EXIT } from '../exit-status.ts';
import { runWaitReady } from '../client/wait-ready.ts';
import { runProxy } from './proxy.ts';

/**
 * The `qmp-mux` command. Without a subcommand it runs the proxy; a first
 * argument naming a subcommand runs that instead, with the rest.
 */
const SUBCOMMANDS: Readonly<Record<string, (argv: string[]) => Promise<number>>> = {
  exec: (argv) => runExec(argv),
  events: (argv) => runEvents(argv),
  shell: (argv) => runShell(argv),
  'wait-ready': (argv) => runWaitReady(argv),
};

/** A client's exit waits for what it wrote: output to a pipe may still be queued, and process.exit would drop it. */
function exitAfterOutput(status: number): void {
  let waiting = 2;
  const done = (): void => {
    if (--waiting === 0) process.exit(status);
  };
  // Output that failed otherwise than by its reader going away is reported by the client's
  // 'error' listener (see processIo), whose event comes after this callback.
  process.stdout.write('', (e?: NodeJS.ErrnoException | null) => (e && e.code !== 'EPIPE' ? undefined : done()));
  process.stderr.write('', done);
}

const argv = process.argv.slice(2);
const subcommand = argv[0] !== undefined && Object.hasOwn(SUBCOMMANDS, argv[0]) ? SUBCOMMANDS[argv[0]] : undefined;
const run = subcommand ? subcommand(argv.slice(1)) : runProxy(argv);
run.then(
  (status) => (subcommand ? exitAfterOutput(status) : process.exit(status)),
  (err: unknown) => {
    process.stderr.write(`qmp-mux: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(PROXY_EXIT.internal);
  },
);
