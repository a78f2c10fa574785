import { JsonStreamer } from '../json/streamer.ts';
import { isObject, JsonNumber, type JsonObject, type JsonValue } from '../json/value.ts';
import { KNOWN_CAPABILITIES } from './request.ts';
import { greetingForClients } from './wire.ts';

/** QEMU's greeting, read: what clients are greeted with, and what the logs and `query-proxy` say of QEMU. */
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

/** Reads QEMU's greeting; undefined when it cannot be read. */
export function readGreeting(bytes: Buffer): Greeting | undefined {
  let value: JsonValue | undefined;
  new JsonStreamer((m) => (value = m.value)).feed(bytes);
  const qmp = isObject(value) ? value.get('QMP') : undefined;
  const offered = isObject(qmp) ? qmp.get('capabilities') : undefined;
  const version = isObject(qmp) ? qmp.get('version') : undefined;
  if (!Array.isArray(offered) || !isObject(version)) return undefined;
  const capabilities = offered.filter((c): c is string => typeof c === 'string' && KNOWN_CAPABILITIES.includes(c));
  const forClients = greetingForClients(bytes, offered.filter((c): c is string => typeof c === 'string'), capabilities);
  if (!forClients) return undefined;
  return { bytes: forClients, capabilities, version: describeVersion(version), versionValue: version };
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
