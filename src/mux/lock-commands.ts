import { typeError, unexpectedMember, type ArgumentError } from '../events/commands.ts';
import { JsonNumber, type JsonObject, type JsonValue } from '../json/value.ts';
import { LOCK_MODES, type LockMode } from '../qmp/extensions.ts';
import { aLock, describeHolding, LOCK_LEASE_MS, MAX_LOCK_WAIT_MS, type Holding, type LockParty, type LockRequest, type LockReset, type LockSnapshot } from './lock-model.ts';

/** The most characters of a lock's `reason`: it is shown to everyone turned away, and kept in the audit log. */
export const MAX_LOCK_REASON = 256;

/** `__org.qmp-mux_lock`'s arguments: `mode` (required), `wait-ms`, `lease-ms`, `reason`. Errors are worded as QEMU words its own. */
export function readLockArguments(args: JsonObject | undefined): LockRequest | ArgumentError {
  const unexpected = unexpectedMember(args, ['mode', 'wait-ms', 'lease-ms', 'reason']);
  if (unexpected) return unexpected;
  const mode = args?.get('mode');
  if (mode === undefined) return { error: "Parameter 'mode' is missing" };
  if (typeof mode !== 'string') return typeError('mode', 'string');
  if (!(LOCK_MODES as readonly string[]).includes(mode)) return { error: `Parameter 'mode' does not accept value '${mode}'` };
  const waitMs = milliseconds(args?.get('wait-ms'), 'wait-ms', 0, MAX_LOCK_WAIT_MS, 0);
  if (typeof waitMs !== 'number') return waitMs;
  const leaseMs = milliseconds(args?.get('lease-ms'), 'lease-ms', 1, LOCK_LEASE_MS.max, LOCK_LEASE_MS.default);
  if (typeof leaseMs !== 'number') return leaseMs;
  const reason = args?.get('reason');
  if (reason !== undefined && typeof reason !== 'string') return typeError('reason', 'string');
  if (reason !== undefined && reason.length > MAX_LOCK_REASON) return { error: `Parameter 'reason' expects at most ${MAX_LOCK_REASON} characters` };
  return { mode: mode as LockMode, waitMs, leaseMs, reason };
}

function milliseconds(value: JsonValue | undefined, name: string, min: number, max: number, absent: number): number | ArgumentError {
  if (value === undefined) return absent;
  if (!(value instanceof JsonNumber)) return typeError(name, 'integer');
  const n = Number(value.text);
  if (!value.integer || n < min || n > max) return { error: `Parameter '${name}' expects a whole number of milliseconds from ${min} to ${max}` };
  return n;
}

/** What a client gets for a command a lock holds back, when it does not wait. */
export function heldBackText(name: string, holding: Holding, oob: boolean): string {
  return `The command ${name} is held back by a lock${oob ? ', and exec-oob commands do not wait' : ''}: ${describeHolding(holding)}`;
}

/** What a client gets for a command that waited for a lock and will not run. */
export function notRunText(name: string, why: LockReset): string {
  return `The command ${name} was not run: it was waiting for a lock when ${why === 'qemu-gone' ? 'QEMU went away' : 'qmp-mux stopped'}`;
}

/** What a lock request that was waiting gets when the lock is reset. */
export function lockResetText(mode: LockMode, why: LockReset): string {
  return `Cannot take ${aLock(mode)}: ${why === 'qemu-gone' ? 'QEMU went away' : 'qmp-mux is stopping'}`;
}

/** What an unlock waiting for the commands sent before it gets when the lock is reset. */
export function unlockResetText(why: LockReset): string {
  return `This client holds no lock: it ended when ${why === 'qemu-gone' ? 'QEMU went away' : 'qmp-mux stopped'}, before what was sent ahead of this unlock was answered`;
}

const count = (n: number): JsonNumber => new JsonNumber(String(Math.round(n)), true);

/** The lock as `query-proxy` shows it, and `query-lock` to `asker` (then `mine` says whether it holds it): `{}` when there is none. */
export function lockValue(snapshot: LockSnapshot | undefined, asker?: LockParty): JsonObject {
  const value: JsonObject = new Map();
  if (snapshot === undefined) return value;
  const { holding: h } = snapshot;
  if (asker !== undefined) value.set('mine', h.party === asker);
  value.set('mode', h.mode);
  value.set('client', count(h.party.who.client));
  value.set('endpoint', h.party.who.endpoint);
  value.set('peer', h.party.who.peer);
  if (h.party.who.identity !== undefined) value.set('identity', h.party.who.identity);
  if (h.party.who.subject !== undefined) value.set('subject', h.party.who.subject);
  if (h.reason !== undefined) value.set('reason', h.reason);
  value.set('since', h.since.toISOString());
  value.set('granted', h.grantedAt !== undefined);
  value.set('lease-ms', count(h.leaseMs));
  value.set('lease-left-ms', count(snapshot.leaseLeftMs));
  value.set('waiting', snapshot.waiting.map((w) => count(w.client)));
  value.set('waiting-commands', count(snapshot.waitingCommands));
  return value;
}

/** What a granted lock request returns. */
export function grantedValue(h: Holding): JsonObject {
  return new Map<string, JsonValue>([
    ['mode', h.mode],
    ['lease-ms', count(h.leaseMs)],
  ]);
}
