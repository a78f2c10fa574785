// The declarations use Node.js's types (the client is an EventEmitter, takes an AbortSignal): kept in
// dist/index.d.ts, this makes a project that has @types/node see them without listing "node" in its
// "types" (which TypeScript 6 and later no longer fill in by default).
/// <reference types="node" preserve="true" />
/**
 * qmp-mux as a library: a QMP client for QEMU or qmp-mux, with lossless
 * numbers (see `QmpValue`); qmp-mux itself, started in this process from a
 * configuration object; and the errors they raise, each with a stable
 * `code`.
 */
export { startMux } from './mux/start.ts';
export type { RunningMux, StartOptions } from './mux/start.ts';
export type {
  AddressText,
  BackoffConfig,
  EndpointConfig,
  LimitsConfig,
  LogConfig,
  MuxConfig,
  PolicyConfig,
  PolicyRuleConfig,
  SocketConfig,
  TimeoutsConfig,
  UpstreamConfig,
} from './config/config-types.ts';
export type { Commented } from './config/fields.ts';
export type { AuditConfig, JournalConfig, MetricsConfig } from './config/ops-fields.ts';
export type { QemuExit } from './upstream/spawn-source.ts';
export { QmpClient } from './client/qmp-client.ts';
export type { QmpArguments, QmpClientEvents, QmpClientOptions, QmpEvent } from './client/qmp-client.ts';
export type { QmpTlsOptions } from './client/tls-options.ts';
export type { ServerAddress } from './client/address.ts';
export type {
  ArgumentsOf,
  BitmapMigrationNodeAlias,
  BlockJobInfo,
  ExecuteArguments,
  Int,
  Int64,
  LockOptions,
  MigrateSetParameters,
  MigrationParameters,
  MultiFDCompression,
  MuxClientInfo,
  MuxEventsInfo,
  MuxLockInfo,
  MuxProxyInfo,
  NoArguments,
  NoReturn,
  ObjectPropertyInfo,
  QmpCommands,
  ReturnOf,
  RunState,
  StatusInfo,
  VersionInfo,
} from './client/commands.ts';
export type { LockMode } from './qmp/extensions.ts';
export { connectRetrying } from './client/reconnect.ts';
export type { RetryOptions } from './client/reconnect.ts';
export { formatVersion } from './client/client-session.ts';
export type { QmpGreeting } from './client/client-session.ts';
export { fromJson, toJson } from './client/values.ts';
export type { QmpInput, QmpObject, QmpValue } from './client/values.ts';
export { JsonNumber } from './json/value.ts';
export type { JsonObject, JsonValue } from './json/value.ts';
export type { Address } from './net/address.ts';
export {
  AddressError,
  ConfigError,
  ConnectionError,
  EventOverflowError,
  ProtocolError,
  QmpError,
  QmpMuxError,
  TimeoutError,
  TlsError,
  ValueError,
} from './errors.ts';
