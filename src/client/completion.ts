import { JsonStreamer } from '../json/streamer.ts';
import type { QmpSchema, SchemaMember, TagLookup } from './schema.ts';
import { splitWords, type Word } from './words.ts';

/** Completions in readline's shape: the candidates, and the text before the cursor they replace. */
export type Completions = [candidates: string[], replaced: string];

/**
 * Tab completion for the shell's shorthand, from what the server says:
 * command names from `query-commands` (so a qmp-mux endpoint's policy
 * shows), and from `query-qmp-schema` argument names (`name=` for a value,
 * `name.` for an object, nested through dotted keys, with the members of the
 * variant that a discriminator already on the line selects), enum values
 * and booleans after `=`, and transaction action types and their arguments.
 * Pure: fed the line before the cursor, it answers.
 */
export class Completer {
  private readonly commands: string[];

  constructor(
    commands: readonly string[],
    /** Without a schema (a server that refuses `query-qmp-schema`), only names complete. */
    private readonly schema?: QmpSchema,
  ) {
    this.commands = [...commands].sort();
  }

  complete(line: string, inTransaction: boolean): Completions {
    const nothing: Completions = [[], ''];
    if (line.trimStart().startsWith('{')) return nothing;
    const split = splitWords(line);
    if (split.unclosed) return nothing;
    const words = split.words;
    const current = split.betweenWords ? '' : words.pop()!.text;
    let inAction = inTransaction;
    if (!inAction && words[0]?.text === 'transaction(') {
      words.shift();
      inAction = true;
    }
    const head = words[0];
    if (head === undefined) {
      const names = inAction ? (this.schema?.actionTypes().sort() ?? []) : this.commands;
      return [withSpace(names.filter((n) => n.startsWith(current))), current];
    }
    const root = inAction ? this.schema?.actionDataType(head.text) : this.schema?.argumentType(head.text);
    if (root === undefined) return nothing;
    const given = givenArguments(words.slice(1));
    const eq = current.indexOf('=');
    if (eq >= 0) return this.completeValue(root, current.slice(0, eq), current.slice(eq + 1), given);
    return this.completeKey(root, current, given);
  }

  private completeKey(root: string, current: string, given: Map<string, string>): Completions {
    const schema = this.schema!;
    const path = current.split('.');
    const partial = path.pop()!;
    const type = this.resolve(root, path, given);
    if (type === undefined) return [[], partial];
    const prefix = path.map((p) => `${p}.`).join('');
    const members = schema.members(type, tagsAt(prefix, given)).filter((m) => m.name.startsWith(partial) && !given.has(prefix + m.name));
    const ordered = [...members.filter((m) => !m.optional), ...members.filter((m) => m.optional)];
    const candidates = ordered.flatMap((m) => {
      const shapes = schema.shapes(m.type);
      return [...(shapes.scalar ? [`${m.name}=`] : []), ...(shapes.object ? [`${m.name}.`] : [])];
    });
    return [candidates, partial];
  }

  private completeValue(root: string, key: string, partial: string, given: Map<string, string>): Completions {
    const path = key.split('.');
    const leaf = path.pop()!;
    const parent = this.resolve(root, path, given);
    const prefix = path.map((p) => `${p}.`).join('');
    const member = parent === undefined ? undefined : this.schema!.members(parent, tagsAt(prefix, given)).find((m) => m.name === leaf);
    const values = member === undefined ? [] : this.schema!.values(member.type);
    return [withSpace(values.filter((v) => v.startsWith(partial))), partial];
  }

  /** The type at a dotted path below `root`, or undefined where the path leaves the schema. */
  private resolve(root: string, path: readonly string[], given: Map<string, string>): string | undefined {
    let type = root;
    let prefix = '';
    for (const name of path) {
      const member: SchemaMember | undefined = this.schema!.members(type, tagsAt(prefix, given)).find((m) => m.name === name);
      if (member === undefined || !this.schema!.shapes(member.type).object) return undefined;
      type = member.type;
      prefix += `${name}.`;
    }
    return type;
  }
}

/** Completions that end a word get the space that starts the next one. */
function withSpace(candidates: string[]): string[] {
  return candidates.map((c) => `${c} `);
}

/** The `KEY=VALUE` words already on the line: key to value (a JSON string's contents, else the text). */
function givenArguments(words: readonly Word[]): Map<string, string> {
  const given = new Map<string, string>();
  for (const w of words) {
    const eq = w.text.indexOf('=');
    if (eq > 0) given.set(w.text.slice(0, eq), stringValue(w.text.slice(eq + 1)));
  }
  return given;
}

function tagsAt(prefix: string, given: Map<string, string>): TagLookup {
  return (member) => given.get(prefix + member);
}

function stringValue(text: string): string {
  if (!text.startsWith('"') && !text.startsWith("'")) return text;
  let decoded: string | undefined;
  new JsonStreamer((m) => {
    if (typeof m.value === 'string') decoded = m.value;
  }).feed(Buffer.from(text, 'utf8'));
  return decoded ?? text;
}
