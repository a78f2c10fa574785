import type { PolicyOptions } from '../config/options.ts';
import { globMatcher } from './glob.ts';

/** An endpoint's command policy: allowed if some allow pattern matches and no deny pattern does. */
export class Policy {
  private readonly allowed: (name: string) => boolean;
  private readonly denied: (name: string) => boolean;
  private readonly cache = new Map<string, boolean>();

  constructor(options: PolicyOptions) {
    this.allowed = globMatcher(options.allow);
    this.denied = globMatcher(options.deny);
  }

  /** Whether `name`, the command name qmp-mux would send to QEMU, may be run. */
  allows(name: string): boolean {
    let verdict = this.cache.get(name);
    if (verdict === undefined) {
      verdict = this.allowed(name) && !this.denied(name);
      if (this.cache.size < 1024) this.cache.set(name, verdict);
    }
    return verdict;
  }
}

/** The error text a refused command gets (class GenericError; QEMU's "not found" is CommandNotFound). */
export function refusal(name: string, endpoint: string): string {
  return `The command ${name} is not allowed on endpoint '${endpoint}'`;
}
