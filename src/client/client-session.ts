import { ConnectionError, ProtocolError, QmpError, type QmpMuxError } from '../errors.ts';
import { writeCompact } from '../json/writer.ts';
import { clientRequest } from '../qmp/wire.ts';
import { assertNever } from '../util/assert.ts';
import { isObject, JsonNumber, type JsonObject, type JsonValue } from '../json/value.ts';

/** What the server said about itself in its greeting. */
export interface QmpGreeting {
  version: {
    qemu: { major: number; minor: number; micro: number };
    /** Empty for upstream builds; distributions put their package version here. */
    package: string;
  };
  /** Capabilities offered (`oob` on QEMU's socket monitors); none is enabled. */
  capabilities: string[];
}

/** `7.2.22 (Debian 1:7.2+dfsg-7)`: the version as people read it. */
export function formatVersion(g: QmpGreeting): string {
  const { major, minor, micro } = g.version.qemu;
  return `${major}.${minor}.${micro}${g.version.package ? ` (${g.version.package})` : ''}`;
}

export type SessionState = 'greeting' | 'negotiating' | 'ready' | 'closed';

export interface SessionEvents {
  /** Text to write to the server. */
  send(text: string): void;
  /** Negotiation is done; commands may be executed. */
  ready(greeting: QmpGreeting): void;
  /** An event, as received. */
  event(event: JsonObject): void;
  /** A reply that answers none of our commands; it is dropped. */
  stray(message: JsonObject): void;
  /** The session cannot go on; it is closed, and the connection should be. */
  failed(error: QmpMuxError): void;
  /** A greeting arrived in a session that does not negotiate (see `negotiate`). */
  greeted?(greeting: QmpGreeting): void;
}

interface Pending {
  command: string;
  settle(reply: JsonObject): void;
  reject(error: QmpMuxError): void;
}

/**
 * The client side of QMP, without a socket: reads the greeting, negotiates
 * (enabling no capability), then sends commands with ids of its own
 * (integers from 1) and matches the replies to them. A reply with an id it
 * did not send is dropped, as the QMP spec asks; a reply without an id can
 * only answer input the server could not read, which this client never
 * sends, so it ends the session.
 */
export class ClientSession {
  private current: SessionState;
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly events: SessionEvents,
    /**
     * False: commands may be sent at once, no greeting is awaited and no
     * negotiation made (QEMU's guest agent sends no greeting; a person may
     * negotiate by hand). A greeting that comes is told to `greeted`.
     */
    private readonly negotiate = true,
  ) {
    this.current = negotiate ? 'greeting' : 'ready';
  }

  get state(): SessionState {
    return this.current;
  }

  receive(message: JsonValue): void {
    if (this.current === 'closed') return;
    if (!isObject(message)) {
      this.fail(new ProtocolError(`the server sent ${describeMessage(message)} where a JSON object belongs`));
      return;
    }
    if (message.has('event')) {
      this.events.event(message);
      return;
    }
    if (!this.negotiate && message.has('QMP')) {
      const greeting = parseGreeting(message);
      if (greeting === undefined) this.fail(new ProtocolError(`unreadable QMP greeting: ${truncate(writeCompact(message).text)}`));
      else this.events.greeted?.(greeting);
      return;
    }
    switch (this.current) {
      case 'greeting':
        this.greeting(message);
        return;
      case 'negotiating':
      case 'ready':
        this.reply(message);
        return;
      default:
        return assertNever(this.current);
    }
  }

  /** Sends a command; resolves with its reply's `return`, rejects with QmpError for an error reply. */
  execute(command: string, args?: JsonObject): Promise<JsonValue> {
    if (this.current !== 'ready') {
      return Promise.reject(new ConnectionError(this.current === 'closed' ? 'the connection is closed' : 'the connection is not ready yet'));
    }
    return new Promise((resolve, reject) => {
      this.request(command, args, {
        command,
        settle: (reply) => {
          const error = reply.get('error');
          if (error === undefined) resolve(reply.get('return')!);
          else reject(qmpError(command, error));
        },
        reject,
      });
    });
  }

  /** Ends the session: every command still waiting is rejected with `error`. */
  close(error: QmpMuxError): void {
    if (this.current === 'closed') return;
    this.current = 'closed';
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const p of waiting) p.reject(error);
  }

  private greeting(message: JsonObject): void {
    const error = message.get('error');
    if (error !== undefined) {
      // qmp-mux refuses a client over its endpoint's limit this way, before any greeting.
      this.fail(new ConnectionError(`refused: ${qmpError('greeting', error).message}`));
      return;
    }
    const greeting = parseGreeting(message);
    if (greeting === undefined) {
      this.fail(new ProtocolError(`expected a QMP greeting, got ${truncate(writeCompact(message).text)}`));
      return;
    }
    this.current = 'negotiating';
    this.request('qmp_capabilities', undefined, {
      command: 'qmp_capabilities',
      settle: (reply) => {
        const refused = reply.get('error');
        if (refused !== undefined) {
          this.fail(new ProtocolError(`capabilities negotiation failed: ${qmpError('qmp_capabilities', refused).message}`));
          return;
        }
        this.current = 'ready';
        this.events.ready(greeting);
      },
      reject: () => undefined,
    });
  }

  private reply(message: JsonObject): void {
    if (!message.has('return') && !message.has('error')) {
      this.events.stray(message);
      return;
    }
    const id = message.get('id');
    if (id === undefined) {
      const error = message.get('error');
      const what = error === undefined ? 'a reply without id' : `an error without id (${qmpError('?', error).message})`;
      this.fail(new ProtocolError(`the server sent ${what}, which answers no command of ours`));
      return;
    }
    const pending = id instanceof JsonNumber ? this.pending.get(id.text) : undefined;
    if (pending === undefined) {
      this.events.stray(message);
      return;
    }
    this.pending.delete((id as JsonNumber).text);
    pending.settle(message);
  }

  private request(command: string, args: JsonObject | undefined, pending: Pending): void {
    const id = this.nextId++;
    this.pending.set(String(id), pending);
    this.events.send(clientRequest(command, args, id));
  }

  private fail(error: QmpMuxError): void {
    this.close(error);
    this.events.failed(error);
  }
}

function qmpError(command: string, error: JsonValue): QmpError {
  const cls = isObject(error) ? error.get('class') : undefined;
  const desc = isObject(error) ? error.get('desc') : undefined;
  return new QmpError(command, typeof cls === 'string' ? cls : 'GenericError', typeof desc === 'string' ? desc : writeCompact(error).text);
}

function parseGreeting(message: JsonObject): QmpGreeting | undefined {
  const qmp = message.get('QMP');
  if (!isObject(qmp)) return undefined;
  const version = qmp.get('version');
  const qemu = isObject(version) ? version.get('qemu') : undefined;
  if (!isObject(version) || !isObject(qemu)) return undefined;
  const part = (name: string): number => {
    const n = qemu.get(name);
    return n instanceof JsonNumber ? Number(n.text) : NaN;
  };
  const major = part('major');
  const minor = part('minor');
  const micro = part('micro');
  if (![major, minor, micro].every(Number.isInteger)) return undefined;
  const pkg = version.get('package');
  const caps = qmp.get('capabilities');
  return {
    version: { qemu: { major, minor, micro }, package: typeof pkg === 'string' ? pkg : '' },
    capabilities: Array.isArray(caps) ? caps.filter((c): c is string => typeof c === 'string') : [],
  };
}

function describeMessage(v: JsonValue): string {
  if (Array.isArray(v)) return 'an array';
  if (v instanceof JsonNumber) return `the number ${v.text}`;
  return truncate(writeCompact(v).text);
}

function truncate(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
