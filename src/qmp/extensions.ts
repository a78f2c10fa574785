/**
 * qmp-mux's own names, after QMP's downstream-extension rule
 * (`__RFQDN_name`): upstream QEMU never uses names that start so.
 */
export const EXTENSION_PREFIX = '__org.qmp-mux_';

export const QUERY_CLIENTS = `${EXTENSION_PREFIX}query-clients`;
export const QUERY_PROXY = `${EXTENSION_PREFIX}query-proxy`;
export const QUERY_EVENTS = `${EXTENSION_PREFIX}query-events`;
export const SET_EVENTS = `${EXTENSION_PREFIX}set-events`;
export const LOCK = `${EXTENSION_PREFIX}lock`;
export const UNLOCK = `${EXTENSION_PREFIX}unlock`;
export const QUERY_LOCK = `${EXTENSION_PREFIX}query-lock`;

/**
 * The lock's modes: `write` lets other clients run what the read-only
 * policy preset allows; `exclusive` lets them run nothing that reaches QEMU.
 */
export const LOCK_MODES = ['write', 'exclusive'] as const;
export type LockMode = (typeof LOCK_MODES)[number];

/** qmp-mux's own queries: they only read. */
export const OWN_QUERY_PREFIX = `${EXTENSION_PREFIX}query-`;

/** Every command qmp-mux answers itself. */
export const OWN_COMMANDS: readonly string[] = [QUERY_CLIENTS, QUERY_PROXY, QUERY_EVENTS, SET_EVENTS, LOCK, UNLOCK, QUERY_LOCK];
