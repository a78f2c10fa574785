import type { PolicyOptions, PolicyRule } from './policy.ts';
import { EXTENSION_PREFIX } from '../qmp/extensions.ts';


/**
 * Named policies (the README's table says what each allows and refuses,
 * and why).
 *
 * `read-only` lets through commands that only read state: QEMU's `query-*`
 * and `x-query-*` (none returns a secret's value in QEMU 7.2: they name
 * secrets by id), QOM and device introspection (names and types only), qmp-mux's
 * own queries, and the choice of events a client receives. Not
 * `qom-list-properties`: QEMU makes an object of the type named to list
 * its properties, and in QEMU 7.2 some types crash QEMU so (`colo-compare`,
 * `qio-net-listener`, `x-remote-object`, `microvm-machine`). `qom-get`
 * reads values, secrets included (`-object secret,id=s,data=...` answers
 * `data` to anyone), and QEMU resolves many spellings of one path
 * (`/objects/s`, `//objects/s/`, `objects//s`, and `s` alone by partial
 * match), so it is allowed only at absolute paths under `/machine`
 * (devices, CPUs, the machine) and `/chardevs`: secrets and TLS
 * credentials are user-created objects, which QEMU keeps under `/objects`,
 * and no link property in QEMU 7.2 leads from those trees to one.
 * `human-monitor-command` can run anything, so it is denied even if
 * allowed elsewhere.
 */
export const POLICY_PRESETS: Readonly<Record<'all' | 'read-only', Readonly<PolicyOptions>>> = Object.freeze({
  all: Object.freeze({ allow: ['*'], deny: [] }),
  'read-only': Object.freeze({
    allow: [
      'query-*',
      'x-query-*',
      { command: 'qom-get', arguments: { path: ['/machine', '/machine/*', '/chardevs', '/chardevs/*'] } },
      'qom-list',
      'qom-list-types',
      'device-list-properties',
      `${EXTENSION_PREFIX}query-*`,
      // Changes only what the calling client receives.
      `${EXTENSION_PREFIX}set-events`,
    ],
    deny: ['human-monitor-command'],
  }),
});

export type PresetName = keyof typeof POLICY_PRESETS;
export const PRESET_NAMES = Object.keys(POLICY_PRESETS) as PresetName[];

/** A policy's own copy of `policy`'s rules (presets are shared). */
export function copyPolicy(policy: Readonly<PolicyOptions>): PolicyOptions {
  return { allow: policy.allow.map(copyRule), deny: policy.deny.map(copyRule) };
}

function copyRule(rule: PolicyRule): PolicyRule {
  if (typeof rule === 'string') return rule;
  return { command: rule.command, arguments: Object.fromEntries(Object.entries(rule.arguments).map(([path, patterns]) => [path, [...patterns]])) };
}
