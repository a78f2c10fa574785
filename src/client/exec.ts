import { createInterface } from 'node:readline';
import { ConnectionError, QmpMuxError, ShorthandError, TimeoutError, UsageError } from '../errors.ts';
import { LOCK, LOCK_MODES, UNLOCK, type LockMode } from '../qmp/extensions.ts';
import { escapeUnsafe } from '../util/unsafe-text.ts';
import { formatServerAddress, type ServerAddress } from './address.ts';
import { milliseconds, parseOptions } from './cli-options.ts';
import { CLIENT_EXIT, errorExitStatus, greetingLimit, processIo, planOrExit, type CliIo } from './cli-io.ts';
import { QmpClient } from './qmp-client.ts';
import { formatJson } from './format.ts';
import { commandFromArgs, hmpCommand, hmpLine, ShorthandParser, type Command } from './shorthand.ts';
import { TLS_OPTIONS, serverTarget, tlsUsage, type QmpTlsOptions } from './tls-options.ts';

export const EXEC_USAGE = `Usage: qmp-mux exec [options] COMMAND [KEY=VALUE...] [';' COMMAND [KEY=VALUE...]]...
       qmp-mux exec [options] '{"execute": COMMAND, "arguments": {...}}'
       qmp-mux exec [options] transaction( TYPE [KEY=VALUE...] )
       qmp-mux exec [options] -H HMP-COMMAND... [';' HMP-COMMAND...]...
       qmp-mux exec [options] < FILE        (commands on stdin, one per line)

Connects, negotiates, runs the command and prints its return value as JSON
(indented on a terminal, one compact line otherwise; numbers exactly as the
server sent them). KEY=VALUE arguments are the shell's shorthand (README,
"Clients"); a value with spaces is one argument (quote it:
command-line='info status'), and a whole line may be given as one argument.
A ';' word between commands runs several, in order. With no COMMAND, runs
the commands on stdin in order, printing each return value. It stops at the
first command that fails.

Options:
  --connect ADDR            unix:PATH, tcp:HOST:PORT, tls:HOST:PORT or a
                            socket path (default: $QMP_SOCKET, else
                            unix:qmp-mux.sock)
${tlsUsage(28)}  --wait-event NAME[,NAME...]
                            then wait for one of these events and print it
  --timeout MS              give up after MS milliseconds, at most 2147483647
                            (default: no limit but 10000 ms for the greeting;
                            0: no limit at all, the greeting included)
  --lock write|exclusive    run every command under qmp-mux's lock, released
                            at the end whatever happens (write: others may
                            still run queries; exclusive: nothing)
  --lock-wait MS            wait this long for a lock another client holds
                            (default: fail at once, naming the holder)
  --lock-lease MS           the lock ends if exec sends nothing this long
                            (qmp-mux's default 60000, at most 3600000)
  --lock-reason TEXT        shown to the clients the lock turns away
  -H, --hmp                 HMP: the words (or each line on stdin) are a human
                            monitor command, run through human-monitor-command;
                            its output is printed as text
  -k, --keep-going          go on after a command fails
  -p, --pretty              indent the output even when it is not a terminal
  --compact                 one line per value even on a terminal
  -h, --help                show this help

Exit status: 0 done; 1 a command failed (QMP error class and description on
stderr), or the lock was refused or ended before the unlock; 2 bad usage or
a command that does not parse; 3 connection failed or lost; 4 timed out;
5 the output could not be written.
`;

const OPTIONS = {
  connect: { names: ['--connect'], value: true },
  ...TLS_OPTIONS,
  waitEvent: { names: ['--wait-event'], value: true },
  timeout: { names: ['--timeout'], value: true },
  lock: { names: ['--lock'], value: true },
  lockWait: { names: ['--lock-wait'], value: true },
  lockLease: { names: ['--lock-lease'], value: true },
  lockReason: { names: ['--lock-reason'], value: true },
  hmp: { names: ['-H', '--hmp'], value: false },
  keepGoing: { names: ['-k', '--keep-going'], value: false },
  pretty: { names: ['-p', '--pretty'], value: false },
  compact: { names: ['--compact'], value: false },
  help: { names: ['-h', '--help'], value: false },
} as const;

/** The word between commands given as arguments. */
const THEN = ';';

interface ExecPlan {
  address: ServerAddress;
  tls: QmpTlsOptions | undefined;
  /** The commands from the arguments; empty: commands come from stdin. */
  commands: Command[];
  /** The lock to run them under. */
  lock: { mode: LockMode; waitMs: number | undefined; leaseMs: number | undefined; reason: string | undefined } | undefined;
  waitEvents: string[];
  timeoutMs: number | undefined;
  keepGoing: boolean;
  pretty: boolean;
  /** Commands are HMP command lines. */
  hmp: boolean;
}

/** `qmp-mux exec`: resolves with the exit status. */
export async function runExec(argv: readonly string[], io: CliIo = processIo('exec')): Promise<number> {
  const p = planOrExit(io, 'exec', EXEC_USAGE, () => readPlan(argv, io));
  if (typeof p === 'number') return p;
  const abort = new AbortController();
  const timer = !p.timeoutMs ? undefined : setTimeout(() => abort.abort(new TimeoutError(`timed out after ${p.timeoutMs} ms`)), p.timeoutMs);
  let client: QmpClient | undefined;
  try {
    client = await QmpClient.connect(p.address, { signal: abort.signal, ...greetingLimit(p.timeoutMs), ...(p.tls && { tls: p.tls }) });
    const connected = client;
    const run = (): Promise<number> => (p.commands.length > 0 ? runArguments(connected, p, io) : runLines(connected, p, io, abort.signal));
    return p.lock ? await underLock(connected, p.lock, run, io) : await run();
  } catch (e) {
    io.stderr.write(`${escapeUnsafe(`qmp-mux exec: ${e instanceof QmpMuxError ? e.message : String(e)}`)}\n`);
    return errorExitStatus(e);
  } finally {
    clearTimeout(timer);
    await client?.close();
  }
}

function readPlan(argv: readonly string[], io: CliIo): ExecPlan | 'help' {
  const { values, flags, positional } = parseOptions(argv, OPTIONS);
  if (flags.has('help')) return 'help';
  if (flags.has('pretty') && flags.has('compact')) throw new UsageError('give either --pretty or --compact');
  const waitEvents = values.waitEvent === undefined ? [] : values.waitEvent.split(',').filter((n) => n !== '');
  if (values.waitEvent !== undefined && waitEvents.length === 0) throw new UsageError('--wait-event needs an event name');
  const hmp = flags.has('hmp');
  const commands = splitCommands(positional).map((words, i, all) => {
    try {
      return hmp ? hmpCommand(words.join(' ')) : commandFromArgs(words);
    } catch (e) {
      if (all.length === 1 || !(e instanceof ShorthandError)) throw e;
      throw new ShorthandError(`command ${i + 1}: ${e.message}`);
    }
  });
  if (commands.length === 0 && waitEvents.length > 0) throw new UsageError('--wait-event needs a COMMAND (not commands on stdin)');
  return {
    ...serverTarget(values, values.connect, io.env),
    commands,
    lock: readLock(values),
    waitEvents,
    timeoutMs: values.timeout === undefined ? undefined : milliseconds(values.timeout, '--timeout'),
    keepGoing: flags.has('keepGoing'),
    pretty: flags.has('pretty') || (!flags.has('compact') && io.stdout.isTTY === true),
    hmp,
  };
}

/** The lock `--lock` and its companions ask for. */
function readLock(values: Partial<Record<keyof typeof OPTIONS, string>>): ExecPlan['lock'] {
  const { lock, lockWait, lockLease, lockReason } = values;
  if (lock === undefined) {
    const stray = (['lockWait', 'lockLease', 'lockReason'] as const).find((k) => values[k] !== undefined);
    if (stray !== undefined) throw new UsageError(`${OPTIONS[stray].names[0]} needs --lock`);
    return undefined;
  }
  if (!(LOCK_MODES as readonly string[]).includes(lock)) throw new UsageError(`--lock: expected write or exclusive, got '${lock}'`);
  return {
    mode: lock as LockMode,
    waitMs: lockWait === undefined ? undefined : milliseconds(lockWait, '--lock-wait'),
    leaseMs: lockLease === undefined ? undefined : milliseconds(lockLease, '--lock-lease'),
    reason: lockReason,
  };
}

/** The words of several commands, split at ';' words; an empty command is a usage error. */
function splitCommands(words: readonly string[]): string[][] {
  const commands: string[][] = [];
  let current: string[] = [];
  for (const word of words) {
    if (word !== THEN) {
      current.push(word);
      continue;
    }
    commands.push(current);
    current = [];
  }
  if (words.length > 0) commands.push(current);
  if (commands.some((c) => c.length === 0)) throw new UsageError(`'${THEN}' must stand between two commands`);
  return commands;
}

/**
 * Takes the lock, runs `run`, and unlocks. Whatever happens the lock goes:
 * on a failure here the connection closes, and with it the lock. An unlock
 * refused (the lease ran out meanwhile) is a failure: what ran may have
 * run unprotected.
 */
async function underLock(client: QmpClient, lock: NonNullable<ExecPlan['lock']>, run: () => Promise<number>, io: CliIo): Promise<number> {
  const { mode, waitMs, leaseMs, reason } = lock;
  const taken = await ownCommand(client, LOCK, { mode, 'wait-ms': waitMs, 'lease-ms': leaseMs, reason }, io);
  if (taken !== CLIENT_EXIT.ok) return taken;
  const status = await run();
  const released = await ownCommand(client, UNLOCK, undefined, io);
  return status === CLIENT_EXIT.ok ? released : status;
}

/** Runs one of qmp-mux's own commands, printing nothing but its error. */
async function ownCommand(client: QmpClient, name: string, args: Parameters<QmpClient['execute']>[1], io: CliIo): Promise<number> {
  try {
    await client.execute(name, args);
    return CLIENT_EXIT.ok;
  } catch (e) {
    const status = errorExitStatus(e);
    if (status !== CLIENT_EXIT.qmpError) throw e;
    io.stderr.write(`${escapeUnsafe(`qmp-mux exec: ${name}: ${(e as Error).message}`)}\n`);
    return status;
  }
}

/** The commands given as arguments, in order; `--wait-event` waits after the last. */
async function runArguments(client: QmpClient, p: ExecPlan, io: CliIo): Promise<number> {
  let status: number = CLIENT_EXIT.ok;
  for (const [i, command] of p.commands.entries()) {
    const outcome = i === p.commands.length - 1 ? await runOne(client, command, p, io) : await execute(client, command, p, io);
    if (outcome !== CLIENT_EXIT.ok && status === CLIENT_EXIT.ok) status = outcome;
    if (outcome !== CLIENT_EXIT.ok && !p.keepGoing) return status;
  }
  return status;
}

async function runOne(client: QmpClient, command: Command, p: ExecPlan, io: CliIo): Promise<number> {
  // Listen before sending: QEMU may emit the event before the reply (STOP before stop's return).
  const events = p.waitEvents.length > 0 ? client.events() : undefined;
  try {
    const status = await execute(client, command, p, io);
    if (status !== CLIENT_EXIT.ok || events === undefined) return status;
    for await (const event of events) {
      if (p.waitEvents.includes(event.event)) {
        io.stdout.write(`${formatJson(event.json, p.pretty)}\n`);
        return CLIENT_EXIT.ok;
      }
    }
    throw new ConnectionError(`${formatServerAddress(client.address)}: the connection ended before ${p.waitEvents.join(' or ')}`);
  } finally {
    await events?.return?.();
  }
}

async function runLines(client: QmpClient, p: ExecPlan, io: CliIo, signal: AbortSignal): Promise<number> {
  const lines = createInterface({ input: io.stdin, crlfDelay: Infinity, terminal: false });
  const stop = (): void => lines.close();
  signal.addEventListener('abort', stop, { once: true });
  const parser = new ShorthandParser();
  let status: number = CLIENT_EXIT.ok;
  let number = 0;
  try {
    for await (const line of lines) {
      number++;
      if (line.trimStart().startsWith('#')) continue;
      let outcome: number;
      try {
        const parsed = p.hmp ? hmpLine(line) : parser.parse(line);
        outcome = parsed.kind === 'command' ? await execute(client, parsed.command, p, io) : CLIENT_EXIT.ok;
      } catch (e) {
        if (!(e instanceof ShorthandError)) throw e;
        io.stderr.write(`${escapeUnsafe(`qmp-mux exec: line ${number}: ${e.message}`)}\n`);
        outcome = CLIENT_EXIT.usage;
      }
      if (outcome !== CLIENT_EXIT.ok && status === CLIENT_EXIT.ok) status = outcome;
      if (outcome !== CLIENT_EXIT.ok && !p.keepGoing) return status;
    }
    signal.throwIfAborted();
    if (parser.inTransaction) {
      io.stderr.write(`qmp-mux exec: line ${number}: transaction( was not closed with )\n`);
      return status === CLIENT_EXIT.ok ? CLIENT_EXIT.usage : status;
    }
    return status;
  } finally {
    signal.removeEventListener('abort', stop);
    lines.close();
  }
}

/** Runs one command and prints its return value, or its error on stderr. */
async function execute(client: QmpClient, command: Command, p: ExecPlan, io: CliIo): Promise<number> {
  try {
    const value = await client.executeJson(command.name, command.arguments);
    if (p.hmp && typeof value === 'string') {
      // HMP's output is text for people, with its own line ends (CRLF).
      const text = escapeUnsafe(value.replace(/\r\n/g, '\n'), '\n\t');
      io.stdout.write(text === '' || text.endsWith('\n') ? text : `${text}\n`);
    } else {
      io.stdout.write(`${formatJson(value, p.pretty)}\n`);
    }
    return CLIENT_EXIT.ok;
  } catch (e) {
    const status = errorExitStatus(e);
    if (status !== CLIENT_EXIT.qmpError) throw e;
    io.stderr.write(`${escapeUnsafe(`qmp-mux exec: ${command.name}: ${(e as Error).message}`)}\n`);
    return status;
  }
}
