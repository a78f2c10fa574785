import { appendFileSync } from 'node:fs';
import { JsonNumber, type JsonObject, type JsonValue } from '../json/value.ts';
import { formatJson } from './format.ts';
import type { QmpGreeting } from './client-session.ts';
import type { Command } from './shorthand.ts';

/**
 * The shell's session log (`-l FILE`, as qmp-shell's): what the person sent
 * and what came back, events included, in order, one JSON object per line
 * with the time it was written:
 *
 *     {"time": ..., "connected": "unix:/run/vm1.qmp"}
 *     {"time": ..., "received": {"QMP": {...}}}
 *     {"time": ..., "sent": {"execute": "query-status"}}
 *     {"time": ..., "received": {"return": {...}}}
 *     {"time": ..., "received": {"timestamp": ..., "event": "STOP"}}
 *     {"time": ..., "disconnected": "the server closed the connection"}
 *
 * Values are the server's and the command's exactly (numbers with their
 * digits; control characters in strings escaped, as on the terminal); the
 * shell's own queries for completion are left out. Appended to (created
 * with mode 0600: commands can carry secrets), one write per line, so a
 * session cut short still has everything before.
 */
export class SessionLog {
  private stopped = false;

  constructor(
    readonly path: string,
    /** A line that could not be written: the log stops there (said once by the caller). */
    private readonly failed: (error: Error) => void,
  ) {}

  connected(address: string): void {
    this.write('connected', address);
  }

  /** The greeting, as QEMU writes it. */
  greeting(g: QmpGreeting): void {
    const { major, minor, micro } = g.version.qemu;
    const int = (n: number): JsonNumber => new JsonNumber(String(n), true);
    const qemu: JsonObject = new Map<string, JsonValue>([['micro', int(micro)], ['minor', int(minor)], ['major', int(major)]]);
    const version: JsonObject = new Map<string, JsonValue>([['qemu', qemu], ['package', g.version.package]]);
    this.write('received', new Map([['QMP', new Map<string, JsonValue>([['version', version], ['capabilities', [...g.capabilities]]])]]));
  }

  sent(command: Command): void {
    const message: JsonObject = new Map<string, JsonValue>([['execute', command.name]]);
    if (command.arguments.size > 0) message.set('arguments', command.arguments);
    this.write('sent', message);
  }

  returned(value: JsonValue): void {
    this.write('received', new Map([['return', value]]));
  }

  error(errorClass: string, desc: string): void {
    this.write('received', new Map([['error', new Map([['class', errorClass], ['desc', desc]])]]));
  }

  /** An event, exactly as the server sent it. */
  event(json: JsonObject): void {
    this.write('received', json);
  }

  disconnected(why: string): void {
    this.write('disconnected', why);
  }

  private write(key: string, value: JsonValue): void {
    if (this.stopped) return;
    // Escaped as on a terminal: the file can be read with cat, and is still JSON with the same values.
    const line = formatJson(new Map<string, JsonValue>([['time', new Date().toISOString()], [key, value]]), false);
    try {
      appendFileSync(this.path, `${line}\n`, { mode: 0o600 });
    } catch (e) {
      this.stopped = true;
      this.failed(e as Error);
    }
  }
}
