import { qdictOrder } from '../json/qdict.ts';
import { isObject, type JsonObject, type JsonValue } from '../json/value.ts';
import { writeQemu } from '../json/writer.ts';
import type { ErrorClass } from './error-classes.ts';

/** The only capability QMP defines (QEMU 2.12 onwards). */
export const KNOWN_CAPABILITIES: readonly string[] = ['oob'];

/**
 * A request judged the way QEMU's dispatcher judges it. `idText` is the
 * request's id as QEMU would echo it, or undefined when there is none.
 * `oob` is QEMU's `qmp_is_oob()` for a client that enabled `oob`: such
 * requests are answered as soon as possible rather than in order. Without
 * `oob`, QEMU reads nothing more until each request is answered, so even an
 * `exec-oob` (refused as unexpected) is answered in its turn.
 */
export type Request =
  | { kind: 'error'; idText: string | undefined; oob: boolean; errorClass: ErrorClass; desc: string }
  | { kind: 'negotiate'; idText: string | undefined; enable: string[] }
  | { kind: 'command'; idText: string | undefined; oob: boolean; name: string; args: JsonObject | undefined };

export interface RequestContext {
  /** The client has completed capabilities negotiation. */
  negotiated: boolean;
  /** The client enabled the `oob` capability. */
  oob: boolean;
}

const NEGOTIATION_COMMAND = 'qmp_capabilities';

/** Classifies one parsed input message as QEMU 7.2 would. */
export function judgeRequest(value: JsonValue, ctx: RequestContext): Request {
  if (!isObject(value)) {
    return generic(undefined, false, 'QMP input must be a JSON object');
  }
  const id = value.get('id');
  const idText = id === undefined ? undefined : writeQemu(id);
  const oob = ctx.oob && value.has('exec-oob') && !value.has('execute');

  const problem = checkMembers(value, ctx.oob);
  if (problem !== undefined) return generic(idText, oob, problem);

  const execute = value.get('execute');
  const name = (typeof execute === 'string' ? execute : value.get('exec-oob')) as string;
  const args = value.get('arguments') as JsonObject | undefined;

  if (!ctx.negotiated) {
    if (name !== NEGOTIATION_COMMAND) {
      return { kind: 'error', idText, oob, errorClass: 'CommandNotFound', desc: "Expecting capabilities negotiation with 'qmp_capabilities'" };
    }
    return negotiate(idText, args);
  }
  if (name !== NEGOTIATION_COMMAND) return { kind: 'command', idText, oob, name, args };
  if (oob) return generic(idText, oob, `The command ${name} does not support OOB`);
  const judged = negotiate(idText, args);
  if (judged.kind === 'error') return judged;
  return { kind: 'error', idText, oob, errorClass: 'CommandNotFound', desc: 'Capabilities negotiation is already complete, command ignored' };
}

function generic(idText: string | undefined, oob: boolean, desc: string): Request {
  return { kind: 'error', idText, oob, errorClass: 'GenericError', desc };
}

/** QEMU's `qmp_dispatch_check_obj()`, walking members in QEMU's order. */
function checkMembers(dict: JsonObject, allowOob: boolean): string | undefined {
  let execKey: string | undefined;
  for (const key of qdictOrder([...dict.keys()])) {
    const member = dict.get(key);
    if (key === 'execute' || (key === 'exec-oob' && allowOob)) {
      if (typeof member !== 'string') return `QMP input member '${key}' must be a string`;
      if (execKey !== undefined) return `QMP input member '${key}' clashes with '${execKey}'`;
      execKey = key;
    } else if (key === 'arguments') {
      if (!isObject(member)) return "QMP input member 'arguments' must be an object";
    } else if (key !== 'id') {
      return `QMP input member '${key}' is unexpected`;
    }
  }
  return execKey === undefined ? "QMP input lacks member 'execute'" : undefined;
}

/**
 * Validates `qmp_capabilities` arguments as QEMU 7.2's generated marshaller
 * does (its texts, including the `'null'` it names list elements by).
 * Whether the capabilities are on offer is the session's business.
 */
function negotiate(idText: string | undefined, args: JsonObject | undefined): Request {
  const enable: string[] = [];
  const raw = args?.get('enable');
  if (raw !== undefined) {
    if (!Array.isArray(raw)) return generic(idText, false, "Invalid parameter type for 'enable', expected: array");
    for (const [i, item] of raw.entries()) {
      if (typeof item !== 'string') return generic(idText, false, `Invalid parameter type for 'enable[${i}]', expected: string`);
      if (!KNOWN_CAPABILITIES.includes(item)) return generic(idText, false, `Parameter 'null' does not accept value '${item}'`);
      enable.push(item);
    }
  }
  for (const key of args?.keys() ?? []) {
    if (key !== 'enable') return generic(idText, false, `Parameter '${key}' is unexpected`);
  }
  return { kind: 'negotiate', idText, enable };
}
