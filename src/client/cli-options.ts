import { UsageError } from '../errors.ts';
import { MAX_TIMER_MS } from '../util/timer.ts';

/** One option of a client subcommand. */
export interface OptionSpec {
  /** `--long` and `-s` spellings. */
  names: readonly string[];
  /** Whether it takes a value (`--name VALUE` or `--name=VALUE`). */
  value: boolean;
}

export interface ParsedOptions<K extends string> {
  /** The value given to each option that takes one (the last, if repeated). */
  values: Partial<Record<K, string>>;
  /** The options without value that were given. */
  flags: Set<K>;
  /** Everything else, in order. */
  positional: string[];
}

/**
 * Parses a subcommand's arguments. Options may come anywhere (so
 * `exec device_del id=x --wait-event DEVICE_DELETED` works); `--` ends them;
 * short flags combine (`-pv`). Throws UsageError naming the argument.
 */
export function parseOptions<K extends string>(argv: readonly string[], specs: Readonly<Record<K, OptionSpec>>): ParsedOptions<K> {
  const byName = new Map<string, [K, OptionSpec]>();
  for (const key of Object.keys(specs) as K[]) {
    for (const name of specs[key].names) byName.set(name, [key, specs[key]]);
  }
  const out: ParsedOptions<K> = { values: {}, flags: new Set(), positional: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      out.positional.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      out.positional.push(arg);
      continue;
    }
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const found = byName.get(name);
    if (found === undefined) {
      if (/^-[a-zA-Z]{2,}$/.test(arg) && [...arg.slice(1)].every((c) => byName.get(`-${c}`)?.[1].value === false)) {
        for (const c of arg.slice(1)) out.flags.add(byName.get(`-${c}`)![0]);
        continue;
      }
      throw new UsageError(`unknown option '${arg}'`);
    }
    const [key, spec] = found;
    if (!spec.value) {
      if (eq > 0) throw new UsageError(`${name} takes no value`);
      out.flags.add(key);
      continue;
    }
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new UsageError(`${name} needs a value`);
    out.values[key] = value;
  }
  return out;
}

/** A whole number of milliseconds from an option, at most what a timer can wait; throws UsageError naming it. */
export function milliseconds(text: string, option: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) throw new UsageError(`${option}: expected a number of milliseconds, got '${text}'`);
  if (n > MAX_TIMER_MS) throw new UsageError(`${option}: at most ${MAX_TIMER_MS} ms (about 24.8 days), got '${text}'`);
  return n;
}

/** A positive whole number from an option; throws UsageError naming it. */
export function count(text: string, option: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1) throw new UsageError(`${option}: expected a whole number of at least 1, got '${text}'`);
  return n;
}
