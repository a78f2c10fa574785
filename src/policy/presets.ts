import type { PolicyOptions } from '../config/options.ts';

/** Prefix of qmp-mux's own commands (QMP's downstream-extension naming, `__RFQDN_name`). */
export const EXTENSION_PREFIX = '__org.qmp-mux_';

/**
 * Named policies. `read-only` lets through commands that only read state:
 * QEMU's `query-*` and `x-query-*`, the QOM and device introspection
 * commands, qmp-mux's own queries, and the choice of events a client
 * receives. `human-monitor-command` can run
 * anything (including `quit`), so it is denied even if allowed elsewhere.
 */
export const POLICY_PRESETS: Readonly<Record<'all' | 'read-only', Readonly<PolicyOptions>>> = Object.freeze({
  all: Object.freeze({ allow: ['*'], deny: [] }),
  'read-only': Object.freeze({
    allow: [
      'query-*',
      'x-query-*',
      'qom-get',
      'qom-list',
      'qom-list-types',
      'qom-list-properties',
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
