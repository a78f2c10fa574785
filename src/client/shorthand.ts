import { ShorthandError } from '../errors.ts';
import { JsonStreamer, type Incoming } from '../json/streamer.ts';
import { isObject, JsonNumber, type JsonObject, type JsonValue } from '../json/value.ts';
import { splitWords, type Word } from './words.ts';

/** A command ready to be sent. */
export interface Command {
  name: string;
  arguments: JsonObject;
}

export type ParsedLine =
  /** Nothing to do (an empty line). */
  | { kind: 'empty' }
  | { kind: 'command'; command: Command }
  /** A line inside `transaction(` ... `)`: the transaction now has `actions` actions. */
  | { kind: 'action'; actions: number };

const TRANSACTION_START = 'transaction(';
const TRANSACTION_END = ')';

/**
 * The shell's command language: qmp-shell's shorthand, made precise, and raw
 * JSON. Stateful only for `transaction(` ... `)`, which spans lines.
 *
 * - A line starting with `{` is one JSON object `{"execute": NAME,
 *   "arguments": {...}}` (an `id` member is ignored: the client sets its own).
 * - Otherwise the line is words (see `splitWords`): a command name, then
 *   `KEY=VALUE` words. A dotted key `a.b.c=V` sets a member of nested objects.
 * - A VALUE starting with `{`, `[`, `"` or `'` must be exactly one JSON value
 *   (QEMU's JSON: single-quoted strings too); it is that value. Any other
 *   VALUE is a JSON number, `true`, `false` or `null` when it is exactly one,
 *   and otherwise the text itself, as a string (`KEY=` is the empty string).
 * - `transaction(` starts a transaction; each following line is an action
 *   `TYPE KEY=VALUE...` (becoming `{"type": TYPE, "data": {...}}`), and a
 *   line `)` (or a last word `)`) sends `transaction` with those actions.
 *   Everything may also be on one line: `transaction( abort )`.
 */
export class ShorthandParser {
  private actions: JsonValue[] | undefined;

  get inTransaction(): boolean {
    return this.actions !== undefined;
  }

  /** Forgets an unfinished transaction; returns how many actions it had (0 when there was none). */
  reset(): number {
    const forgotten = this.actions?.length ?? 0;
    this.actions = undefined;
    return forgotten;
  }

  /** Parses one line; throws ShorthandError naming the word and column. */
  parse(line: string): ParsedLine {
    const trimmed = line.trim();
    if (trimmed === '') return { kind: 'empty' };
    if (trimmed.startsWith('{')) {
      if (this.actions !== undefined) throw new ShorthandError(`inside ${TRANSACTION_START} ... ${TRANSACTION_END} each line is an action: TYPE KEY=VALUE...`);
      return { kind: 'command', command: parseJsonCommand(trimmed) };
    }
    const split = splitWords(line);
    if (split.unclosed) throw new ShorthandError(`unclosed ${split.unclosed.opener} (column ${split.unclosed.at + 1})`);
    return this.parseWords(split.words, (w) => `column ${w.start + 1}`);
  }

  /** Parses a line already split into words (at least one); `where` names a word in errors. */
  parseWords(words: Word[], where: (w: Word) => string): ParsedLine {
    if (this.actions === undefined) {
      if (words[0]!.text !== TRANSACTION_START) return { kind: 'command', command: commandFromWords(words, where) };
      this.actions = [];
      words.shift();
    } else if (words[0]!.text === TRANSACTION_START) {
      throw new ShorthandError(`already inside ${TRANSACTION_START} (${where(words[0]!)}); end it with ${TRANSACTION_END}`);
    }
    return this.action(words, where);
  }

  private action(words: Word[], column: (w: Word) => string): ParsedLine {
    const actions = this.actions!;
    const last = words[words.length - 1];
    const finished = last?.text === TRANSACTION_END;
    if (finished) words.pop();
    if (words.length > 0) {
      const type = words[0]!;
      if (type.text === TRANSACTION_END) throw new ShorthandError(`unexpected ${TRANSACTION_END} (${column(type)})`);
      checkName(type, 'an action type', column);
      actions.push(new Map<string, JsonValue>([['type', type.text], ['data', buildArguments(words.slice(1), column)]]));
    }
    if (!finished) return { kind: 'action', actions: actions.length };
    this.actions = undefined;
    return { kind: 'command', command: { name: 'transaction', arguments: new Map([['actions', actions]]) } };
  }
}

/** An HMP command line, run through `human-monitor-command` (the shell's and exec's `-H`). */
export function hmpCommand(line: string): Command {
  return { name: 'human-monitor-command', arguments: new Map([['command-line', line]]) };
}

/** A line of HMP mode (`-H`): an empty one runs nothing. */
export function hmpLine(line: string): { kind: 'empty' } | { kind: 'command'; command: Command } {
  return line.trim() === '' ? { kind: 'empty' } : { kind: 'command', command: hmpCommand(line) };
}

/**
 * A command from words the shell has already split (the arguments of
 * `qmp-mux exec`): a name and `KEY=VALUE` words, `transaction(` TYPE
 * `KEY=VALUE...` `)`, or one JSON object. A single argument holding a whole
 * line (`'transaction( abort )'`, `'device_del id=x'`) is read as the
 * shell reads a line.
 */
export function commandFromArgs(args: readonly string[]): Command {
  if (args.length === 0) throw new ShorthandError('no command given');
  const first = args[0]!.trim();
  if (first.startsWith('{')) {
    if (args.length > 1) throw new ShorthandError(`a JSON command stands alone; got '${args[1]}' after it`);
    return parseJsonCommand(first);
  }
  const parser = new ShorthandParser();
  const parsed =
    args.length === 1 && /\s/.test(args[0]!)
      ? parser.parse(args[0]!)
      : parser.parseWords(
          args.map((text, i) => ({ text, start: i, end: i + 1 })),
          (w) => `argument ${w.start + 1}`,
        );
  if (parsed.kind !== 'command') throw new ShorthandError(`${TRANSACTION_START} was not closed with ${TRANSACTION_END}`);
  return parsed.command;
}

function commandFromWords(words: Word[], where: (w: Word) => string): Command {
  const name = words[0]!;
  checkName(name, 'a command name', where);
  return { name: name.text, arguments: buildArguments(words.slice(1), where) };
}

function checkName(w: Word, what: string, where: (w: Word) => string): void {
  if (/["'{}[\]()=\s]/.test(w.text) || w.text === '') throw new ShorthandError(`expected ${what}, got '${w.text}' (${where(w)})`);
}

/** `KEY=VALUE` words as an object; dotted keys make nested objects. */
function buildArguments(words: Word[], where: (w: Word) => string): JsonObject {
  const root: JsonObject = new Map();
  // Objects made for dotted keys; an object given as a JSON value is a value, not extended.
  const made = new Set<JsonObject>([root]);
  let previous: Word | undefined;
  for (const w of words) {
    const eq = w.text.indexOf('=');
    if (eq < 0) {
      // `command-line=info status`: a value with a space, not quoted.
      const plain = previous !== undefined && !/["'{[]/.test(previous.text) ? previous.text : undefined;
      const quoted = plain === undefined ? '' : `; a value with spaces is quoted: ${plain.replace('=', "='")} ${w.text}'`;
      throw new ShorthandError(`expected KEY=VALUE, got '${w.text}' (${where(w)})${quoted}`);
    }
    previous = w;
    const key = w.text.slice(0, eq);
    const path = key.split('.');
    if (path.some((p) => p === '' || /["'{}[\]\s]/.test(p))) throw new ShorthandError(`bad argument name '${key}' (${where(w)})`);
    const value = parseValue(w.text.slice(eq + 1), key, where(w));
    let parent = root;
    for (let i = 0; i < path.length - 1; i++) {
      const existing = parent.get(path[i]!);
      if (existing === undefined) {
        const child: JsonObject = new Map();
        made.add(child);
        parent.set(path[i]!, child);
        parent = child;
      } else if (isObject(existing) && made.has(existing)) {
        parent = existing;
      } else {
        throw new ShorthandError(`'${path.slice(0, i + 1).join('.')}' is given both as a value and as an object (${where(w)})`);
      }
    }
    const leaf = path[path.length - 1]!;
    const existing = parent.get(leaf);
    if (existing !== undefined) {
      const twice = isObject(existing) && made.has(existing) ? 'both as a value and as an object' : 'twice';
      throw new ShorthandError(`'${key}' is given ${twice} (${where(w)})`);
    }
    parent.set(leaf, value);
  }
  return root;
}

function parseValue(text: string, key: string, where: string): JsonValue {
  if (text === '') return '';
  const parsed = parseJson(text);
  if (/^["'{[]/.test(text)) {
    if (parsed.error !== undefined) throw new ShorthandError(`value of '${key}': ${parsed.error} (${where})`);
    return parsed.value;
  }
  if (parsed.value instanceof JsonNumber || parsed.value === true || parsed.value === false || parsed.value === null) return parsed.value;
  return text;
}

/** Exactly one JSON value, as QEMU would parse it, or why not. */
function parseJson(text: string): Incoming {
  const found: Incoming[] = [];
  new JsonStreamer((m) => found.push(m)).feed(Buffer.from(`${text} `, 'utf8'));
  const first = found[0];
  if (first === undefined) return { error: 'incomplete JSON' };
  if (first.error !== undefined) return first;
  if (found.length > 1) return { error: 'more than one JSON value' };
  return first;
}

function parseJsonCommand(text: string): Command {
  const parsed = parseJson(text);
  if (parsed.error !== undefined) throw new ShorthandError(`JSON command: ${parsed.error}`);
  const command = parsed.value;
  if (!isObject(command)) throw new ShorthandError('a JSON command must be an object');
  for (const member of command.keys()) {
    if (member === 'exec-oob') throw new ShorthandError('exec-oob is not supported: this client does not enable out-of-band execution');
    if (member !== 'execute' && member !== 'arguments' && member !== 'id') {
      throw new ShorthandError(`JSON command: unexpected member '${member}' (expected {"execute": NAME, "arguments": {...}})`);
    }
  }
  const name = command.get('execute');
  if (typeof name !== 'string') throw new ShorthandError('JSON command: "execute" must be a string (the command name)');
  const args = command.get('arguments') ?? new Map();
  if (!isObject(args)) throw new ShorthandError('JSON command: "arguments" must be an object');
  return { name, arguments: args };
}
