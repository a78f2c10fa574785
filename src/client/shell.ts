import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { QmpError, QmpMuxError, ShorthandError, UsageError } from '../errors.ts';
import type { JsonObject, JsonValue } from '../json/value.ts';
import { QUERY_LOCK } from '../qmp/extensions.ts';
import { escapeUnsafe } from '../util/unsafe-text.ts';
import { formatServerAddress } from './address.ts';
import { count, parseOptions } from './cli-options.ts';
import { CLIENT_EXIT, errorExitStatus, processIo, planOrExit, type CliIo } from './cli-io.ts';
import { QmpClient, type ConnectionInternals } from './qmp-client.ts';
import { Completer, type Completions } from './completion.ts';
import { describeEvent, formatJson } from './format.ts';
import { HistoryFile } from './history.ts';
import { interrupt } from './interrupt.ts';
import { learnCompletion, printable } from './learn-completion.ts';
import { describeLockView, lockPromptTag, lockShorthand, LockWatch, type LockView } from './lock-watch.ts';
import { PromptOutput } from './prompt-output.ts';
import { retrying } from './reconnect.ts';
import { SessionLog } from './session-log.ts';
import { formatVersion, type QmpGreeting } from './client-session.ts';
import { hmpLine, ShorthandParser, type Command } from './shorthand.ts';
import { TLS_OPTIONS, serverTarget, tlsUsage, type ServerTarget } from './tls-options.ts';

export const SHELL_USAGE = `Usage: qmp-mux shell [options] [ADDR]

An interactive QMP shell. Type a command in shorthand (COMMAND KEY=VALUE...,
dotted keys for nested objects, JSON values, transaction( ... )) or as a
JSON object; see the README, "Clients". Tab completes command names,
argument names and enum values. Events are shown as they come. If the
connection is lost (QEMU restarting), the shell reconnects by itself.
Against qmp-mux, 'lock write|exclusive [wait-ms=N] [lease-ms=N] [reason=...]'
takes its lock and 'unlock' releases it; the prompt shows who holds one.
Ctrl-C clears a typed line, or abandons an open transaction; Ctrl-D (or
Ctrl-C on an empty line otherwise) quits. qmp-shell's options work too.

Options:
  --connect ADDR       (or ADDR alone) unix:PATH, tcp:HOST:PORT, HOST:PORT,
                       tls:HOST:PORT or a socket path (default:
                       $QMP_SOCKET, else unix:qmp-mux.sock)
${tlsUsage(23)}  -p, --pretty         indent replies and events
  -v, --verbose        show the JSON of each command before sending it
  -H, --hmp            HMP mode: lines are human monitor commands, run
                       through human-monitor-command
  -N, --skip-negotiation
                       do not wait for a greeting nor negotiate: for QEMU's
                       guest agent, or to send qmp_capabilities yourself
  -l, --logfile FILE   append the session to FILE: what is sent, what comes
                       back, events, one JSON object per line with its time
  --history PATH       history file (default: ~/.qmp-mux_history)
  --history-size N     entries kept in it (default 1000)
  --no-history         keep no history file
  -h, --help           show this help
`;

const OPTIONS = {
  connect: { names: ['--connect'], value: true },
  ...TLS_OPTIONS,
  pretty: { names: ['-p', '--pretty'], value: false },
  verbose: { names: ['-v', '--verbose'], value: false },
  hmp: { names: ['-H', '--hmp'], value: false },
  skipNegotiation: { names: ['-N', '--skip-negotiation'], value: false },
  logfile: { names: ['-l', '--logfile'], value: true },
  history: { names: ['--history'], value: true },
  historySize: { names: ['--history-size'], value: true },
  noHistory: { names: ['--no-history'], value: false },
  help: { names: ['-h', '--help'], value: false },
} as const;

const DEFAULT_HISTORY_SIZE = 1000;
/** How often a terminal shell asks qmp-mux where its lock is, ms. */
const LOCK_WATCH_MS = 2000;
/** How long the first prompt waits for what completion needs from the server, ms. */
const FIRST_COMPLETION_WAIT_MS = 1000;
const TRANSACTION_PROMPT = 'TRANS> ';

interface ShellPlan extends ServerTarget {
  pretty: boolean;
  verbose: boolean;
  hmp: boolean;
  /** Greet and negotiate (false: -N). */
  negotiate: boolean;
  /** The session log (-l), if one is kept. */
  logfile: string | undefined;
  history: HistoryFile | undefined;
}

/** `qmp-mux shell`: resolves with the exit status when the user quits. */
export async function runShell(argv: readonly string[], io: CliIo = processIo('shell')): Promise<number> {
  const plan = planOrExit(io, 'shell', SHELL_USAGE, () => readPlan(argv, io));
  if (typeof plan === 'number') return plan;
  // A greeting on a connection that does not negotiate (-N) comes after it opened: for the shell, once there.
  let shell: Shell | undefined;
  let early: QmpGreeting | undefined;
  const internals: ConnectionInternals = { negotiate: plan.negotiate, greeted: (g) => (shell ? shell.greeted(g) : (early = g)) };
  let client: QmpClient;
  try {
    client = await QmpClient.open(plan.address, plan.tls ? { tls: plan.tls } : {}, internals);
  } catch (e) {
    io.stderr.write(`${escapeUnsafe(`qmp-mux shell: ${e instanceof QmpMuxError ? e.message : String(e)}`)}\n`);
    return errorExitStatus(e);
  }
  shell = new Shell(plan, io, internals);
  await shell.run(client, early);
  return CLIENT_EXIT.ok;
}

function readPlan(argv: readonly string[], io: CliIo): ShellPlan | 'help' {
  const { values, flags, positional } = parseOptions(argv, OPTIONS);
  if (flags.has('help')) return 'help';
  // The server may be the one argument, as qmp-shell takes it.
  const allowed = values.connect === undefined ? 1 : 0;
  if (positional.length > allowed) throw new UsageError(`unexpected argument '${positional[allowed]}'${allowed === 0 ? ' (the server is already given with --connect)' : ''}`);
  const size = values.historySize === undefined ? DEFAULT_HISTORY_SIZE : count(values.historySize, '--history-size');
  const path = values.history ?? join(io.env.HOME || homedir(), '.qmp-mux_history');
  return {
    ...serverTarget(values, values.connect ?? positional[0], io.env),
    pretty: flags.has('pretty'),
    verbose: flags.has('verbose'),
    hmp: flags.has('hmp'),
    negotiate: !flags.has('skipNegotiation'),
    logfile: values.logfile,
    history: flags.has('noHistory') ? undefined : new HistoryFile(path, size),
  };
}

class Shell {
  private client: QmpClient | undefined;
  private completer = new Completer([]);
  private readonly parser = new ShorthandParser();
  private readonly rl: Interface;
  /** Made at once: lines read before the loop starts (piped input) are kept for it. */
  private readonly lines: AsyncIterableIterator<string>;
  private readonly output: PromptOutput;
  private readonly quitting = new AbortController();
  private log: SessionLog | undefined;
  private lockWatch: LockWatch | undefined;
  private lock: LockView | undefined;
  private readonly terminal: boolean;

  constructor(
    private readonly plan: ShellPlan,
    private readonly io: CliIo,
    private readonly internals: ConnectionInternals,
  ) {
    if (plan.logfile !== undefined) {
      const path = plan.logfile;
      this.log = new SessionLog(path, (e) => {
        this.log = undefined;
        this.io.stderr.write(`${escapeUnsafe(`qmp-mux shell: log ${path}: ${e.message}; not logging the session`)}\n`);
      });
    }
    const terminal = io.stdin.isTTY === true && io.stdout.isTTY === true;
    this.terminal = terminal;
    this.rl = createInterface({
      input: io.stdin,
      output: io.stdout,
      terminal,
      history: this.loadHistory(),
      historySize: plan.history?.size ?? DEFAULT_HISTORY_SIZE,
      removeHistoryDuplicates: true,
      completer: (line: string): Completions => (plan.hmp ? [[], line] : printable(this.completer.complete(line, this.parser.inTransaction))),
    });
    this.lines = this.rl[Symbol.asyncIterator]();
    this.rl.setPrompt(this.promptText());
    this.output = new PromptOutput(this.rl, io.stdout, terminal);
    this.rl.on('SIGINT', () => {
      const done = interrupt(this.rl, this.parser);
      if (done.kind === 'quit') this.quit();
      if (done.kind !== 'abandoned') return;
      this.rl.setPrompt(this.promptText());
      this.output.write(`transaction abandoned (${done.actions} action${done.actions === 1 ? '' : 's'})`);
    });
  }

  async run(client: QmpClient, early: QmpGreeting | undefined): Promise<void> {
    const where = formatServerAddress(client.address);
    this.log?.connected(where);
    if (this.plan.negotiate) {
      this.log?.greeting(client.greeting);
      this.output.write(`Connected to QEMU ${formatVersion(client.greeting)} at ${where}`);
    } else {
      this.output.write(`Connected to ${where}, without negotiating (-N): send qmp_capabilities to negotiate`);
      if (early) this.greeted(early);
    }
    await this.attach(client, FIRST_COMPLETION_WAIT_MS);
    this.output.prompt();
    for await (const line of this.lines) {
      this.output.entered();
      this.remember(line);
      await this.handle(line);
      this.output.prompt();
    }
    // Piped input that ends inside transaction( ... ) would drop its actions unseen; a person at a terminal saw the TRANS> prompt.
    if (this.parser.inTransaction && !this.terminal) this.output.write('syntax error: transaction( was not closed with ) before the end of input');
    this.output.end();
    this.lockWatch?.stop();
    this.quit();
    await this.client?.close();
  }

  /** A greeting on a connection that does not negotiate (-N): shown, and logged. */
  greeted(greeting: QmpGreeting): void {
    this.log?.greeting(greeting);
    this.output.write(`greeting: QEMU ${formatVersion(greeting)}, capabilities: ${greeting.capabilities.join(', ') || 'none'}`);
  }

  /** Ctrl-D, or Ctrl-C with nothing typed to abandon: a command still running is abandoned. */
  private quit(): void {
    this.quitting.abort();
    this.rl.close();
    void this.client?.close();
  }

  private async handle(line: string): Promise<void> {
    let command: Command;
    try {
      const shorthand = this.parser.inTransaction ? line : lockShorthand(line);
      // The lock's words are the shell's own, in HMP mode too.
      const parsed = this.plan.hmp && shorthand === line ? hmpLine(line) : this.parser.parse(shorthand);
      this.rl.setPrompt(this.promptText());
      if (parsed.kind !== 'command') return;
      command = parsed.command;
    } catch (e) {
      if (!(e instanceof ShorthandError)) throw e;
      this.output.write(`syntax error: ${e.message}`);
      return;
    }
    const client = this.client;
    if (client === undefined) {
      this.output.write(`not connected: waiting for ${formatServerAddress(this.plan.address)} (Ctrl-D quits)`);
      return;
    }
    if (this.plan.verbose) {
      const sent: JsonObject = new Map<string, JsonValue>([['execute', command.name]]);
      if (command.arguments.size > 0) sent.set('arguments', command.arguments);
      this.output.write(formatJson(sent, this.plan.pretty));
    }
    this.log?.sent(command);
    try {
      const value = await client.executeJson(command.name, command.arguments);
      this.log?.returned(value);
      this.output.write(this.plan.hmp && typeof value === 'string' ? value.replace(/\r\n/g, '\n').replace(/\n$/, '') : formatJson(value, this.plan.pretty));
      // Negotiated by hand (-N): what completion needs can be asked now, before the next prompt (or soon after).
      if (command.name === 'qmp_capabilities' && !this.plan.negotiate) await this.learnWithin(client, FIRST_COMPLETION_WAIT_MS);
    } catch (e) {
      if (!(e instanceof QmpMuxError)) throw e;
      if (e instanceof QmpError) this.log?.error(e.errorClass, e.desc);
      if (this.quitting.signal.aborted) return;
      this.output.write(e instanceof QmpError ? `error: ${e.errorClass}: ${e.desc}` : `error: ${e.message}`);
    }
    await this.lockWatch?.check();
  }

  /** The prompt for what is being typed, with where qmp-mux's lock is. */
  private promptText(): string {
    if (this.parser.inTransaction) return TRANSACTION_PROMPT;
    return `(${this.plan.hmp ? 'HMP' : 'QEMU'}${lockPromptTag(this.lock)}) `;
  }

  /** qmp-mux's lock changed hands: said above the prompt, which shows it from now on. */
  private lockChanged(view: LockView | undefined): void {
    this.lock = view;
    this.rl.setPrompt(this.promptText());
    this.output.write(describeLockView(view));
  }

  /**
   * Takes a connected client: its events are shown, its loss leads to
   * reconnecting, and completion learns what it offers (waiting for that at
   * most `waitMs`: a QEMU that does not answer must not keep the prompt away).
   */
  private async attach(client: QmpClient, waitMs: number): Promise<void> {
    this.client = client;
    client.on('event', (event) => {
      this.log?.event(event.json);
      this.output.write(describeEvent(event, this.plan.pretty));
    });
    client.once('close', (error) => {
      this.lockWatch?.stop();
      this.lockWatch = undefined;
      // A lock of its own went with the connection; the next connection's watch says where one is.
      this.lock = undefined;
      this.rl.setPrompt(this.promptText());
      this.log?.disconnected(error === undefined || this.quitting.signal.aborted ? 'the shell closed the connection' : error.message);
      // Quitting closes it too (through the signal, after a reconnect): nothing was lost.
      if (error === undefined || this.quitting.signal.aborted) return;
      this.client = undefined;
      this.output.write(`connection lost: ${error.message}; reconnecting...`);
      void this.reconnect();
    });
    await this.learnWithin(client, waitMs);
  }

  /** Learns what completion offers, waiting for it at most `waitMs`: a QEMU that does not answer must not keep the prompt away. */
  private async learnWithin(client: QmpClient, waitMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.learn(client), new Promise((resolve) => (timer = setTimeout(resolve, waitMs)))]);
    clearTimeout(timer);
  }

  /** Learns what completion offers on `client`, if it is still the shell's by then. */
  private async learn(client: QmpClient): Promise<void> {
    const { completer, names } = await learnCompletion(client);
    if (this.client !== client) return;
    this.completer = completer;
    // Only a person at a terminal is told: piped output stays what the commands print.
    if (!names.includes(QUERY_LOCK) || !this.terminal || this.lockWatch !== undefined) return;
    this.lockWatch = new LockWatch(client, (view) => this.lockChanged(view));
    this.lockWatch.start(LOCK_WATCH_MS);
  }

  private async reconnect(): Promise<void> {
    let client: QmpClient;
    try {
      client = await retrying(this.plan.address, { signal: this.quitting.signal, ...(this.plan.tls && { tls: this.plan.tls }) }, (to, options) => QmpClient.open(to, options, this.internals));
    } catch (e) {
      if (this.quitting.signal.aborted) return;
      throw e;
    }
    if (this.quitting.signal.aborted) {
      await client.close();
      return;
    }
    this.log?.connected(formatServerAddress(client.address));
    if (this.plan.negotiate) {
      this.log?.greeting(client.greeting);
      this.output.write(`reconnected: QEMU ${formatVersion(client.greeting)}`);
    } else {
      this.output.write(`reconnected to ${formatServerAddress(client.address)}, without negotiating (-N)`);
    }
    await this.attach(client, 0);
  }

  private loadHistory(): string[] {
    try {
      return this.plan.history?.load() ?? [];
    } catch (e) {
      this.historyFailed(e);
      return [];
    }
  }

  private remember(line: string): void {
    try {
      this.plan.history?.add(line);
    } catch (e) {
      this.historyFailed(e);
    }
  }

  /** A history file that cannot be used is said once, then left alone. */
  private historyFailed(e: unknown): void {
    this.io.stderr.write(`${escapeUnsafe(`qmp-mux shell: history ${this.plan.history!.path}: ${e instanceof Error ? e.message : String(e)}; not saving history`)}\n`);
    this.plan.history = undefined;
  }
}
