import type { Socket } from 'node:net';
import { JsonStreamer } from '../json/streamer.ts';
import { isObject, JsonNumber, type JsonObject, type JsonValue } from '../json/value.ts';
import { writeQemu } from '../json/writer.ts';
import { EOL } from '../qmp/messages.ts';
import { KNOWN_CAPABILITIES } from '../qmp/request.ts';
import { UpstreamFramingError } from '../errors.ts';
import { TickWriter } from '../net/tick-writer.ts';
import { LineFramer } from '../qmp/line-framer.ts';
import { UpstreamFramer, type UpstreamMessage } from '../qmp/upstream-framer.ts';

export interface Greeting {
  /** The greeting clients get, with its line terminator: QEMU's, capabilities limited to what qmp-mux supports. */
  bytes: Buffer;
  /** Capabilities offered to clients. */
  capabilities: string[];
  /** QEMU's version, for logs. */
  version: string;
  /** QEMU's VersionInfo as it sent it. */
  versionValue: JsonValue;
}

export interface UpstreamConnectionOptions {
  /** Longest message accepted from QEMU, bytes. */
  maxMessageSize: number;
  /**
   * How long QEMU may take to greet, ms. Negotiation itself may wait much
   * longer (behind a command an earlier connection left running), and does.
   */
  greetingTimeoutMs: number;
}

export interface UpstreamConnectionEvents {
  /** QEMU greeted and accepted qmp-mux's negotiation. */
  ready(greeting: Greeting): void;
  /** A message after negotiation: a reply or an event. */
  message(message: UpstreamMessage): void;
  /** Everything in the bytes just read has been passed on. */
  read(): void;
  /** Something QEMU sent that qmp-mux could not use; logged, never fatal on its own. */
  anomaly(what: string, bytes: Buffer): void;
  /** The connection is gone. Called once. */
  closed(reason: string): void;
}

export type UpstreamState = 'greeting' | 'negotiating' | 'ready' | 'closed';

/**
 * The id of qmp-mux's own `qmp_capabilities`. Its reply is a barrier: a
 * reply QEMU still owed an earlier connection comes before it (QEMU runs
 * in-band commands one at a time, in order) and is dropped.
 */
const NEGOTIATION_ID = '"qmp-mux"';

/**
 * One connection to a QEMU monitor: reads the greeting, negotiates once
 * (enabling `oob` when QEMU offers it), then carries commands and messages.
 */
export class UpstreamConnection {
  state: UpstreamState = 'greeting';
  private readonly framer: UpstreamFramer;
  /** Once QEMU is known to write one message per line, the cheaper framing. */
  private lines: LineFramer | undefined;
  private readonly maxMessageSize: number;
  private greeting: Greeting | undefined;
  private readonly timer: NodeJS.Timeout;
  private readonly out: TickWriter;

  constructor(
    private readonly socket: Socket,
    private readonly events: UpstreamConnectionEvents,
    options: UpstreamConnectionOptions,
  ) {
    const framerEvents = { message: (m: UpstreamMessage) => this.onMessage(m), garbage: (b: Buffer) => events.anomaly('bytes outside any message', b) };
    this.framer = new UpstreamFramer(framerEvents, options.maxMessageSize);
    this.maxMessageSize = options.maxMessageSize;
    // A QEMU monitor busy with another client accepts the connection and says nothing.
    this.timer = setTimeout(() => this.close(`no greeting within ${options.greetingTimeoutMs} ms (is another client using the monitor?)`), options.greetingTimeoutMs);
    this.timer.unref();
    socket.setNoDelay?.(true);
    this.out = new TickWriter(socket);
    socket.on('data', (chunk: Buffer) => {
      try {
        if (!this.lines && this.state === 'ready' && !this.framer.sawMultiline && this.framer.idle) {
          this.lines = new LineFramer(framerEvents, this.maxMessageSize);
        }
        (this.lines ?? this.framer).feed(chunk);
        events.read();
      } catch (e) {
        if (!(e instanceof UpstreamFramingError)) throw e;
        this.close(e.message);
      }
    });
    socket.on('error', (err) => this.close(err.message));
    socket.on('close', () => this.close('connection closed'));
  }

  /** Sends one serialized command; commands sent in the same tick go out in one write. */
  send(text: string): void {
    if (this.state === 'closed') return;
    this.out.write(text);
  }

  close(reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.timer);
    this.socket.destroy();
    this.events.closed(reason);
  }

  private onMessage(m: UpstreamMessage): void {
    switch (this.state) {
      case 'greeting': {
        if (m.kind !== 'greeting') {
          this.events.anomaly('message before the greeting', m.bytes);
          return;
        }
        const greeting = clientGreeting(m.bytes);
        if (!greeting) {
          this.close('QEMU sent a greeting qmp-mux cannot read');
          return;
        }
        this.greeting = greeting;
        this.state = 'negotiating';
        clearTimeout(this.timer);
        const enable = greeting.capabilities.length > 0 ? `,"arguments":{"enable":${JSON.stringify(greeting.capabilities)}}` : '';
        this.socket.write(`{"execute":"qmp_capabilities"${enable},"id":${NEGOTIATION_ID}}`);
        return;
      }
      case 'negotiating': {
        const idText = m.id && m.id.valueStart >= 0 ? m.bytes.toString('latin1', m.id.valueStart, m.id.valueEnd) : undefined;
        if (idText !== NEGOTIATION_ID) {
          // A reply to a command of an earlier connection (QEMU answers whoever is connected); events cannot come yet.
          this.events.anomaly('message during negotiation', m.bytes);
          return;
        }
        if (m.kind !== 'return') {
          this.close(`QEMU refused capabilities negotiation: ${m.bytes.toString('utf8')}`);
          return;
        }
        this.state = 'ready';
        this.events.ready(this.greeting!);
        return;
      }
      case 'ready':
        this.events.message(m);
        return;
      case 'closed':
        return;
    }
  }
}

/** Builds the greeting for clients from QEMU's; undefined when QEMU's cannot be read. */
export function clientGreeting(bytes: Buffer): Greeting | undefined {
  let value: JsonValue | undefined;
  new JsonStreamer((m) => (value = m.value)).feed(bytes);
  const qmp = isObject(value) ? value.get('QMP') : undefined;
  const offered = isObject(qmp) ? qmp.get('capabilities') : undefined;
  const version = isObject(qmp) ? qmp.get('version') : undefined;
  if (!Array.isArray(offered) || !isObject(version)) return undefined;
  const capabilities = offered.filter((c): c is string => typeof c === 'string' && KNOWN_CAPABILITIES.includes(c));
  let text = bytes.toString('latin1');
  if (capabilities.length !== offered.length) {
    // Splice rather than re-serialize: QEMU's member order survives only in its own bytes.
    const at = text.lastIndexOf('"capabilities": [');
    const end = text.indexOf(']', at);
    if (at < 0 || end < 0) return undefined;
    text = `${text.slice(0, at)}"capabilities": ${writeQemu(capabilities)}${text.slice(end + 1)}`;
  }
  return { bytes: Buffer.from(text + EOL, 'latin1'), capabilities, version: describeVersion(version), versionValue: version };
}

/** `7.2.22 (Debian 1:7.2+dfsg-7)` from QEMU's VersionInfo. */
function describeVersion(version: JsonObject): string {
  const qemu = version.get('qemu');
  const part = (name: string): string => {
    const n = isObject(qemu) ? qemu.get(name) : undefined;
    return n instanceof JsonNumber ? n.text : '?';
  };
  const pkg = version.get('package');
  return `${part('major')}.${part('minor')}.${part('micro')}${typeof pkg === 'string' && pkg !== '' ? ` (${pkg})` : ''}`;
}
