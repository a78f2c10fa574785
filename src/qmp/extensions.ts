/**
 * qmp-mux's own names, after QMP's downstream-extension rule
 * (`__RFQDN_name`): upstream QEMU never uses names that start so.
 */
export const EXTENSION_PREFIX = '__org.qmp-mux_';

export const QUERY_CLIENTS = `${EXTENSION_PREFIX}query-clients`;
export const QUERY_PROXY = `${EXTENSION_PREFIX}query-proxy`;
export const QUERY_EVENTS = `${EXTENSION_PREFIX}query-events`;
export const SET_EVENTS = `${EXTENSION_PREFIX}set-events`;

/** Every command qmp-mux answers itself. */
export const OWN_COMMANDS: readonly string[] = [QUERY_CLIENTS, QUERY_PROXY, QUERY_EVENTS, SET_EVENTS];
