import { globMatcher } from '../policy/glob.ts';
import { Policy } from '../policy/policy.ts';
import type { AccessOptions, LimitOptions } from './endpoint-options.ts';

/**
 * What a client may do and receive, compiled: its endpoint's policy, events
 * and limits, or those of the identity its certificate matched. The
 * command router, the client's session and the event fan-out read a
 * client's access, never its endpoint's options directly. A reload makes
 * new ones (and gives each client its new one).
 */
export class Access {
  readonly policy: Policy;
  private readonly eventFilter: (name: string) => boolean;
  private readonly eventCache = new Map<string, boolean>();

  constructor(
    readonly options: AccessOptions,
    /** The endpoint's `eventSequence`: numbers on live events. */
    readonly eventSequence: boolean,
    /** The identity it is for; undefined for the endpoint's own. */
    readonly identity: string | undefined,
  ) {
    this.policy = new Policy(options.policy);
    this.eventFilter = globMatcher(options.events);
  }

  get limits(): Readonly<LimitOptions> {
    return this.options.limits;
  }

  /** The event patterns its clients receive (each may narrow them for itself). */
  get events(): readonly string[] {
    return this.options.events;
  }

  /** Whether its clients receive event `name`. */
  wantsEvent(name: string): boolean {
    let verdict = this.eventCache.get(name);
    if (verdict === undefined) {
      verdict = this.eventFilter(name);
      if (this.eventCache.size < 1024) this.eventCache.set(name, verdict);
    }
    return verdict;
  }
}
