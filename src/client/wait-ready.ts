import { ProtocolError, QmpMuxError, TimeoutError, TlsError, UsageError } from '../errors.ts';
import { escapeUnsafe } from '../util/unsafe-text.ts';
import { formatServerAddress, type ServerAddress } from './address.ts';
import { milliseconds, parseOptions } from './cli-options.ts';
import { CLIENT_EXIT, errorExitStatus, planOrExit, processIo, type CliIo } from './cli-io.ts';
import { QmpClient } from './qmp-client.ts';
import { retrying } from './reconnect.ts';
import { formatVersion } from './client-session.ts';
import { TLS_OPTIONS, serverTarget, tlsUsage, type QmpTlsOptions } from './tls-options.ts';

export const WAIT_READY_USAGE = `Usage: qmp-mux wait-ready [options] [ADDR]

Waits until the QMP server at the address is ready: it accepts a connection,
greets and negotiates. qmp-mux greets only once it is connected to QEMU, so
for a qmp-mux this means its endpoint is open and QEMU is there. Retries
(a socket not there yet, a refused connection, a greeting that does not
come) until then, or until --timeout. For scripts and ExecStartPost=:

  qmp-mux wait-ready --connect /run/qmp-mux/vm1/qmp.sock --timeout 60000 && ...

Options:
  --connect ADDR     (or ADDR alone) unix:PATH, tcp:HOST:PORT, HOST:PORT,
                     tls:HOST:PORT or a socket path (default: $QMP_SOCKET,
                     else unix:qmp-mux.sock)
${tlsUsage(21)}  --timeout MS       give up after MS milliseconds, at most 2147483647
                     (default 30000; 0 never)
  -q, --quiet        print nothing when ready
  -h, --help         show this help

Exit status: 0 ready ("ready: QEMU VERSION at ADDR" on stdout); 2 bad usage;
3 the server there is not a QMP server; 4 not ready within --timeout (the
last reason on stderr); 5 the output could not be written.
`;

const OPTIONS = {
  connect: { names: ['--connect'], value: true },
  ...TLS_OPTIONS,
  timeout: { names: ['--timeout'], value: true },
  quiet: { names: ['-q', '--quiet'], value: false },
  help: { names: ['-h', '--help'], value: false },
} as const;

const DEFAULT_TIMEOUT_MS = 30_000;
/** Between attempts: short, a waiting script should learn soon; no longer than this. */
const RETRY = { initialDelay: 50, maxDelay: 500 } as const;

interface WaitPlan {
  address: ServerAddress;
  tls: QmpTlsOptions | undefined;
  timeoutMs: number;
  quiet: boolean;
}

/** `qmp-mux wait-ready`: resolves with the exit status. */
export async function runWaitReady(argv: readonly string[], io: CliIo = processIo('wait-ready')): Promise<number> {
  const p = planOrExit(io, 'wait-ready', WAIT_READY_USAGE, () => readPlan(argv, io));
  if (typeof p === 'number') return p;
  const where = formatServerAddress(p.address);
  const abort = new AbortController();
  let last: string | undefined;
  const timer = p.timeoutMs > 0 ? setTimeout(() => abort.abort(new TimeoutError(`${where}: not ready within ${p.timeoutMs} ms${last ? ` (last: ${last})` : ''}`)), p.timeoutMs) : undefined;
  // An attempt that connects and is never greeted ends only when the time is up, never told to onRetry: that wait is the last reason.
  const internals = { negotiate: true, connected: () => (last = 'connected; the server has not greeted and negotiated yet') };
  try {
    const options = {
      ...RETRY,
      // Each attempt waits for its greeting as long as the whole run may: qmp-mux holds it until QEMU is there.
      connectTimeout: 0,
      signal: abort.signal,
      ...(p.tls && { tls: p.tls }),
      onRetry: (e: QmpMuxError) => {
        last = e.message;
        // Something else listens there: waiting will not make it QMP; nor will it mend a TLS file.
        if (e instanceof ProtocolError || e instanceof TlsError) abort.abort(e);
      },
    };
    const client = await retrying(p.address, options, (to, attempt) => QmpClient.open(to, attempt, internals));
    if (!p.quiet) io.stdout.write(`${escapeUnsafe(`ready: QEMU ${formatVersion(client.greeting)} at ${where}`)}\n`);
    await client.close();
    return CLIENT_EXIT.ok;
  } catch (e) {
    io.stderr.write(`${escapeUnsafe(`qmp-mux wait-ready: ${e instanceof QmpMuxError ? e.message : String(e)}`)}\n`);
    return errorExitStatus(e);
  } finally {
    clearTimeout(timer);
  }
}

function readPlan(argv: readonly string[], io: CliIo): WaitPlan | 'help' {
  const { values, flags, positional } = parseOptions(argv, OPTIONS);
  if (flags.has('help')) return 'help';
  if (positional.length > (values.connect === undefined ? 1 : 0)) throw new UsageError(`unexpected argument '${positional[values.connect === undefined ? 1 : 0]}'`);
  return {
    // The address may also be the one argument, as qmp-shell takes it.
    ...serverTarget(values, values.connect ?? positional[0], io.env),
    timeoutMs: values.timeout === undefined ? DEFAULT_TIMEOUT_MS : milliseconds(values.timeout, '--timeout'),
    quiet: flags.has('quiet'),
  };
}
