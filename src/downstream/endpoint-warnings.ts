import { policyWarnings, type PolicyWarning } from '../policy/warnings.ts';
import { exposure, type EndpointOptions } from './endpoint-options.ts';

/**
 * What is worth a warning about endpoints, at `--check-config`, start-up
 * and reload: policies (the endpoint's and its identities') that refuse
 * commands yet allow one that runs them all, and endpoints anyone who can
 * reach them may use from beyond this machine.
 */
export function endpointWarnings(endpoints: readonly EndpointOptions[]): PolicyWarning[] {
  return endpoints.flatMap((e) => {
    const identities = policyWarnings(e.identities).map((w) => ({ endpoint: e.name, message: `identity '${w.endpoint}': ${w.message}` }));
    const exposed = exposure(e);
    return [...policyWarnings([e]), ...identities, ...(exposed === undefined ? [] : [{ endpoint: e.name, message: exposed }])];
  });
}
