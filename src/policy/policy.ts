import { isObject, type JsonObject } from '../json/value.ts';
import { argumentText } from './arguments.ts';
import { globMatcher } from './glob.ts';

/**
 * A command rule: a glob of command names (`*` matches any run of
 * characters), alone or with patterns for the command's arguments.
 */
export type PolicyRule = string | ArgumentRule;

/** A rule that matches a command only when its arguments match too. */
export interface ArgumentRule {
  /** Glob of command names. */
  command: string;
  /**
   * Per argument (a dotted path reaches into objects: `file.driver`), globs
   * of which one must match. A string argument matches as itself, a number
   * as QEMU prints it, a boolean as `true`/`false`; an absent argument, an
   * object, an array or null matches none.
   */
  arguments: Record<string, string[]>;
}

/**
 * Which commands an endpoint lets through: a command must match an allow
 * rule and no deny rule. A `transaction` is checked action by action too.
 */
export interface PolicyOptions {
  allow: PolicyRule[];
  deny: PolicyRule[];
}

/** The command whose arguments name other commands: each action runs as the command of its `type`. */
export const TRANSACTION = 'transaction';

/** Why a policy refused a command. */
export type Refusal =
  /** No allow rule names it, or a deny rule does whatever its arguments. */
  | { kind: 'command' }
  /** Its arguments match no allow rule for it, or match a deny rule. */
  | { kind: 'arguments' }
  /** A `transaction` with an action the policy refuses as a command. */
  | { kind: 'action'; index: number; action: string; why: 'command' | 'arguments' }
  /** A `transaction` whose actions cannot be told apart, so cannot be checked. */
  | { kind: 'actions' };

interface CompiledRule {
  readonly command: (name: string) => boolean;
  /** What the arguments must match; empty for a rule on the name alone. */
  readonly args: readonly { readonly path: readonly string[]; readonly match: (text: string) => boolean }[];
}

/** What is known of a command from its name: refused, allowed, or up to its arguments (the rules naming it). */
type Plan = 'refuse' | 'allow' | { readonly allow: readonly CompiledRule[]; readonly deny: readonly CompiledRule[] };

/** Names whose plans are kept (clients choose the names they send). */
const MAX_PLANS = 1024;

/**
 * An endpoint's command policy: a command is allowed if an allow rule
 * matches it and no deny rule does. A rule matches a command by its name's
 * glob and, if it has them, by its argument patterns. Each action of a
 * `transaction` must be allowed as the command of its type, with its data
 * as arguments.
 */
export class Policy {
  private readonly allow: readonly CompiledRule[];
  private readonly deny: readonly CompiledRule[];
  /** Lets everything through, arguments and all: nothing to check. */
  private readonly open: boolean;
  private readonly plans = new Map<string, Plan>();

  constructor(options: PolicyOptions) {
    this.allow = options.allow.map(compile);
    this.deny = options.deny.map(compile);
    this.open = options.deny.length === 0 && options.allow.includes('*');
  }

  /** Undefined when the command `name` with `args` may run; otherwise why not. */
  check(name: string, args: JsonObject | undefined): Refusal | undefined {
    if (this.open) return undefined;
    const why = this.judge(name, args);
    if (why !== undefined) return { kind: why };
    return name === TRANSACTION ? this.checkActions(args) : undefined;
  }

  /** Whether `name` is allowed with some arguments at least (what `query-commands` lists). */
  mayAllow(name: string): boolean {
    return this.plan(name) !== 'refuse';
  }

  /** Whether `name` is allowed whatever its arguments. */
  allowsAlways(name: string): boolean {
    return this.open || this.plan(name) === 'allow';
  }

  /** Whether the policy lets every command through. */
  get allowsEverything(): boolean {
    return this.open;
  }

  private judge(name: string, args: JsonObject | undefined): 'command' | 'arguments' | undefined {
    const plan = this.plan(name);
    if (plan === 'allow') return undefined;
    if (plan === 'refuse') return 'command';
    const ok = plan.allow.some((r) => matches(r, args)) && !plan.deny.some((r) => matches(r, args));
    return ok ? undefined : 'arguments';
  }

  /** QEMU runs each action as the command of its type: so is each judged. */
  private checkActions(args: JsonObject | undefined): Refusal | undefined {
    const actions = args?.get('actions');
    if (!Array.isArray(actions)) return { kind: 'actions' };
    for (const [index, action] of actions.entries()) {
      const type = isObject(action) ? action.get('type') : undefined;
      const data = isObject(action) ? action.get('data') : undefined;
      if (typeof type !== 'string' || (data !== undefined && !isObject(data))) return { kind: 'actions' };
      const why = this.judge(type, data);
      if (why !== undefined) return { kind: 'action', index, action: type, why };
    }
    return undefined;
  }

  private plan(name: string): Plan {
    let plan = this.plans.get(name);
    if (plan === undefined) {
      plan = this.makePlan(name);
      if (this.plans.size < MAX_PLANS) this.plans.set(name, plan);
    }
    return plan;
  }

  private makePlan(name: string): Plan {
    const deny = this.deny.filter((r) => r.command(name));
    if (deny.some((r) => r.args.length === 0)) return 'refuse';
    const allow = this.allow.filter((r) => r.command(name));
    if (allow.length === 0) return 'refuse';
    if (deny.length === 0 && allow.some((r) => r.args.length === 0)) return 'allow';
    return { allow, deny };
  }
}

function compile(rule: PolicyRule): CompiledRule {
  if (typeof rule === 'string') return { command: globMatcher([rule]), args: [] };
  return {
    command: globMatcher([rule.command]),
    args: Object.entries(rule.arguments).map(([path, patterns]) => ({ path: path.split('.'), match: globMatcher(patterns) })),
  };
}

function matches(rule: CompiledRule, args: JsonObject | undefined): boolean {
  return rule.args.every(({ path, match }) => {
    const text = argumentText(args, path);
    return text !== undefined && match(text);
  });
}

/** The error text a refused command gets (class GenericError; QEMU's "not found" is CommandNotFound). */
export function refusal(name: string, endpoint: string, why: Refusal): string {
  const base = `The command ${name} is not allowed on endpoint '${endpoint}'`;
  switch (why.kind) {
    case 'command':
      return base;
    case 'arguments':
      return `${base} with these arguments`;
    case 'action':
      return `${base}: its action ${why.action} (actions[${why.index}]) is not allowed${why.why === 'arguments' ? ' with these arguments' : ''}`;
    case 'actions':
      return `${base}: its actions must be a list of objects with a 'type', each checked as the command of that name`;
  }
}
