import { ConnectionError, ProtocolError, QmpError, QmpMuxError, TimeoutError } from '../errors.ts';
import { CLIENT_EXIT, type ClientExit } from '../exit-status.ts';
import { escapeUnsafe } from '../util/unsafe-text.ts';

export { CLIENT_EXIT } from '../exit-status.ts';

/** Where a subcommand reads and writes; `processIo(subcommand)` outside tests. */
export interface CliIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  /** Calls `handler` on SIGINT or SIGTERM; returns a function that stops doing so. */
  onInterrupt(handler: () => void): () => void;
}

/** The process's own streams, for `qmp-mux SUBCOMMAND`. */
export function processIo(subcommand: string): CliIo {
  // A reader that goes away (`| head`) ends the output; any other failure
  // (a full disk) ends the run too, said in one line rather than a stack trace.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(CLIENT_EXIT.ok);
    process.stderr.write(`qmp-mux ${subcommand}: cannot write the output: ${e.message}\n`);
    process.exit(CLIENT_EXIT.output);
  });
  return {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    onInterrupt(handler) {
      process.on('SIGINT', handler);
      process.on('SIGTERM', handler);
      return () => {
        process.off('SIGINT', handler);
        process.off('SIGTERM', handler);
      };
    },
  };
}

/** The exit status for an error that ended a run; anything but our own errors is a bug and is thrown on. */
export function errorExitStatus(e: unknown): ClientExit {
  if (e instanceof QmpError) return CLIENT_EXIT.qmpError;
  if (e instanceof TimeoutError) return CLIENT_EXIT.timeout;
  if (e instanceof ConnectionError || e instanceof ProtocolError) return CLIENT_EXIT.connection;
  if (e instanceof QmpMuxError) return CLIENT_EXIT.usage;
  throw e;
}

/**
 * A subcommand's plan read from its command line; or, when there is nothing
 * to run, its exit status: after `--help` (the usage printed) or a usage
 * error (one line and where to find help).
 */
export function planOrExit<T>(io: CliIo, subcommand: string, usage: string, read: () => T | 'help'): T | number {
  let plan: T | 'help';
  try {
    plan = read();
  } catch (e) {
    if (!(e instanceof QmpMuxError)) throw e;
    io.stderr.write(`${escapeUnsafe(`qmp-mux ${subcommand}: ${e.message}`)}\ntry 'qmp-mux ${subcommand} --help'\n`);
    return CLIENT_EXIT.usage;
  }
  if (plan !== 'help') return plan;
  io.stdout.write(usage);
  return CLIENT_EXIT.ok;
}

/**
 * The library's own limit on the greeting, under a client's `--timeout`:
 * given, the timeout bounds the greeting instead, longer or shorter than
 * the library's 10 s (and `0`, nothing does); absent, the library's holds.
 */
export function greetingLimit(timeoutMs: number | undefined): { connectTimeout?: number } {
  return timeoutMs === undefined ? {} : { connectTimeout: 0 };
}
