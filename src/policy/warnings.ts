import { Policy, type PolicyOptions } from './policy.ts';

/** Runs any HMP command: whatever a QMP policy refuses by name, this can do. */
export const HMP_COMMAND = 'human-monitor-command';

/** A policy that means less than it says, on one endpoint. */
export interface PolicyWarning {
  endpoint: string;
  message: string;
}

/**
 * Policies that refuse some commands yet let `human-monitor-command`
 * through: HMP reaches every command, so such a policy refuses nothing in
 * fact. Said at `--check-config` and at start-up.
 */
export function policyWarnings(endpoints: readonly { readonly name: string; readonly policy: PolicyOptions }[]): PolicyWarning[] {
  return endpoints.flatMap((e) => {
    const policy = new Policy(e.policy);
    if (policy.allowsEverything || !policy.mayAllow(HMP_COMMAND)) return [];
    return [{ endpoint: e.name, message: `policy refuses some commands but allows ${HMP_COMMAND}, which runs any of them through HMP; deny ${HMP_COMMAND} too` }];
  });
}
