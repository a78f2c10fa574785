import { QmpMuxError, TimeoutError, UsageError } from '../errors.ts';
import { escapeUnsafe } from '../util/unsafe-text.ts';
import { formatServerAddress } from './address.ts';
import { count, milliseconds, parseOptions } from './cli-options.ts';
import { CLIENT_EXIT, errorExitStatus, greetingLimit, processIo, planOrExit, type CliIo } from './cli-io.ts';
import { QmpClient, type QmpEvent } from './qmp-client.ts';
import { formatJson } from './format.ts';
import { TLS_OPTIONS, serverTarget, tlsUsage } from './tls-options.ts';

export const EVENTS_USAGE = `Usage: qmp-mux events [options] [NAME...]

Prints the server's events as they come, one JSON object per line (numbers
exactly as the server sent them), only those named if NAMEs are given.

Options:
  --connect ADDR     unix:PATH, tcp:HOST:PORT, tls:HOST:PORT or a socket
                     path (default: $QMP_SOCKET, else unix:qmp-mux.sock)
${tlsUsage(21)}  --timeout MS       stop after MS milliseconds, at most 2147483647; the
                     greeting may take as long (without it, 10000 ms; 0: no
                     limit at all, the greeting included)
  --count N          stop after N events
  -p, --pretty       indent each event
  -h, --help         show this help

Exit status: 0 stopped by --timeout, --count, SIGINT or SIGTERM; 2 bad usage;
3 could not connect, or the connection ended (QEMU quit); 4 no greeting in
time; 5 the output could not be written.
`;

const OPTIONS = {
  connect: { names: ['--connect'], value: true },
  ...TLS_OPTIONS,
  timeout: { names: ['--timeout'], value: true },
  count: { names: ['--count'], value: true },
  pretty: { names: ['-p', '--pretty'], value: false },
  help: { names: ['-h', '--help'], value: false },
} as const;

/** `qmp-mux events`: resolves with the exit status. */
export async function runEvents(argv: readonly string[], io: CliIo = processIo('events')): Promise<number> {
  const plan = planOrExit(io, 'events', EVENTS_USAGE, () => readPlan(argv, io));
  if (typeof plan === 'number') return plan;
  const { address, tls, names, timeoutMs, limit, pretty } = plan;
  const stop = new AbortController();
  const stopListening = io.onInterrupt(() => stop.abort());
  // Once connected, the timer's abort is the end of the stream; before, the greeting did not come in time.
  const timer = !timeoutMs ? undefined : setTimeout(() => stop.abort(new TimeoutError(`${formatServerAddress(address)}: no QMP greeting within ${timeoutMs} ms`)), timeoutMs);
  let client: QmpClient | undefined;
  try {
    try {
      client = await QmpClient.connect(address, { signal: stop.signal, ...greetingLimit(timeoutMs), ...(tls && { tls }) });
    } catch (e) {
      if (stop.signal.aborted && !(stop.signal.reason instanceof TimeoutError)) return CLIENT_EXIT.ok;
      io.stderr.write(`${escapeUnsafe(`qmp-mux events: ${e instanceof QmpMuxError ? e.message : String(e)}`)}\n`);
      return errorExitStatus(e);
    }
    const connected = client;
    let seen = 0;
    let draining = false;
    client.on('event', (event: QmpEvent) => {
      // Events read in the same chunk as the last one wanted still arrive: once stopped, none is written.
      if (stop.signal.aborted || (names.size > 0 && !names.has(event.event))) return;
      // A slow reader of our output slows our reading, and the server's sending, instead of filling memory.
      if (!io.stdout.write(`${formatJson(event.json, pretty)}\n`) && !draining) {
        draining = true;
        connected.pause();
        io.stdout.once('drain', () => {
          draining = false;
          connected.resume();
        });
      }
      if (++seen === limit) stop.abort();
    });
    const ended = await client.done;
    if (ended === undefined || stop.signal.aborted) return CLIENT_EXIT.ok;
    io.stderr.write(`${escapeUnsafe(`qmp-mux events: ${ended.message}`)}\n`);
    return errorExitStatus(ended);
  } finally {
    clearTimeout(timer);
    stopListening();
    await client?.close();
  }
}

function readPlan(argv: readonly string[], io: CliIo) {
  const { values, flags, positional } = parseOptions(argv, OPTIONS);
  if (flags.has('help')) return 'help' as const;
  const bad = positional.find((n) => !/^[A-Za-z0-9_.-]+$/.test(n));
  if (bad !== undefined) throw new UsageError(`'${bad}' is not an event name`);
  return {
    ...serverTarget(values, values.connect, io.env),
    names: new Set(positional),
    timeoutMs: values.timeout === undefined ? undefined : milliseconds(values.timeout, '--timeout'),
    limit: values.count === undefined ? undefined : count(values.count, '--count'),
    pretty: flags.has('pretty'),
  };
}
