import { isObject, type JsonObject, type JsonValue } from '../json/value.ts';

/** A member of an object type. */
export interface SchemaMember {
  name: string;
  type: string;
  optional: boolean;
}

type Entity =
  | { kind: 'command'; argType: string | undefined }
  | { kind: 'object'; members: SchemaMember[]; tag: string | undefined; variants: Map<string, string> }
  | { kind: 'enum'; values: string[] }
  | { kind: 'alternate'; branches: string[] }
  | { kind: 'array'; element: string }
  | { kind: 'builtin'; jsonType: string };

/** Reads the value of a discriminator member that is already set, by name. */
export type TagLookup = (member: string) => string | undefined;

/**
 * The value of `query-qmp-schema`, indexed for the questions completion
 * asks: a command's arguments, the members of an object type (those of the
 * variant chosen by its discriminator included), the values of an enum.
 * Type names in the introspection are masked (`"49"`) except builtins;
 * command names are real. Entries it cannot read are skipped.
 */
export class QmpSchema {
  private readonly entities = new Map<string, Entity>();

  constructor(schema: JsonValue) {
    if (!Array.isArray(schema)) return;
    for (const info of schema) {
      if (!isObject(info)) continue;
      const name = info.get('name');
      const entity = readEntity(info);
      if (typeof name === 'string' && entity) this.entities.set(name, entity);
    }
  }

  /** The argument type of a command, if it is known. */
  argumentType(command: string): string | undefined {
    const e = this.entities.get(command);
    return e?.kind === 'command' ? e.argType : undefined;
  }

  /** The type of a transaction action (`transaction`'s `actions[].type`) with its `data` members. */
  private transactionAction(): { tag: string; variants: Map<string, string> } | undefined {
    const args = this.object(this.argumentType('transaction'));
    const actions = args?.members.find((m) => m.name === 'actions');
    const list = actions ? this.entities.get(actions.type) : undefined;
    const action = list?.kind === 'array' ? this.object(list.element) : undefined;
    return action?.tag === undefined ? undefined : { tag: action.tag, variants: action.variants };
  }

  /** The action types a transaction accepts. */
  actionTypes(): string[] {
    return [...(this.transactionAction()?.variants.keys() ?? [])];
  }

  /** The type of an action's `data`. */
  actionDataType(action: string): string | undefined {
    const wrapper = this.object(this.transactionAction()?.variants.get(action));
    return wrapper?.members.find((m) => m.name === 'data')?.type;
  }

  /**
   * The members a value of `type` may have: an object's, plus those of the
   * variant its discriminator selects (when `tag` knows the value), or for
   * an alternate those of its object branches.
   */
  members(type: string, tag: TagLookup): SchemaMember[] {
    const e = this.entities.get(type);
    if (e?.kind === 'alternate') return e.branches.flatMap((b) => (this.entities.get(b)?.kind === 'object' ? this.members(b, tag) : []));
    if (e?.kind !== 'object') return [];
    const chosen = e.tag === undefined ? undefined : tag(e.tag);
    const variant = chosen === undefined ? undefined : e.variants.get(chosen);
    if (variant === undefined) return e.members;
    const seen = new Set(e.members.map((m) => m.name));
    return [...e.members, ...this.members(variant, () => undefined).filter((m) => !seen.has(m.name))];
  }

  /** Completions for a scalar of `type`: enum values, `true`/`false`, `null`. */
  values(type: string): string[] {
    const e = this.entities.get(type);
    switch (e?.kind) {
      case 'enum':
        return e.values;
      case 'builtin':
        return e.jsonType === 'boolean' ? ['true', 'false'] : e.jsonType === 'null' ? ['null'] : [];
      case 'alternate':
        return e.branches.flatMap((b) => this.values(b));
      default:
        return [];
    }
  }

  /** Whether a value of `type` may be an object with members, and whether it may be written as one `KEY=VALUE`. */
  shapes(type: string): { object: boolean; scalar: boolean } {
    const e = this.entities.get(type);
    switch (e?.kind) {
      case 'object':
        return { object: true, scalar: false };
      case 'alternate': {
        const branches = e.branches.map((b) => this.shapes(b));
        return { object: branches.some((b) => b.object), scalar: branches.some((b) => b.scalar) };
      }
      default:
        return { object: false, scalar: true };
    }
  }

  private object(type: string | undefined): Extract<Entity, { kind: 'object' }> | undefined {
    const e = type === undefined ? undefined : this.entities.get(type);
    return e?.kind === 'object' ? e : undefined;
  }
}

function readEntity(info: JsonObject): Entity | undefined {
  const str = (key: string, from: JsonObject = info): string | undefined => {
    const v = from.get(key);
    return typeof v === 'string' ? v : undefined;
  };
  const list = (key: string): JsonObject[] => {
    const v = info.get(key);
    return Array.isArray(v) ? v.filter(isObject) : [];
  };
  switch (str('meta-type')) {
    case 'command':
      return { kind: 'command', argType: str('arg-type') };
    case 'object': {
      const members: SchemaMember[] = [];
      for (const m of list('members')) {
        const name = str('name', m);
        const type = str('type', m);
        if (name !== undefined && type !== undefined) members.push({ name, type, optional: m.has('default') });
      }
      const variants = new Map<string, string>();
      for (const v of list('variants')) {
        const when = str('case', v);
        const type = str('type', v);
        if (when !== undefined && type !== undefined) variants.set(when, type);
      }
      return { kind: 'object', members, tag: str('tag'), variants };
    }
    case 'enum': {
      const raw = info.get('values');
      const values = Array.isArray(raw) ? raw.filter((v): v is string => typeof v === 'string') : list('members').flatMap((m) => str('name', m) ?? []);
      return { kind: 'enum', values };
    }
    case 'alternate':
      return { kind: 'alternate', branches: list('members').flatMap((m) => str('type', m) ?? []) };
    case 'array': {
      const element = str('element-type');
      return element === undefined ? undefined : { kind: 'array', element };
    }
    case 'builtin':
      return { kind: 'builtin', jsonType: str('json-type') ?? 'value' };
    default:
      return undefined;
  }
}
