import type { JsonObject } from '../json/value.ts';
import type { IdentityMetrics } from '../ops/identity-metrics.ts';
import type { EndpointMetrics } from '../ops/mux-metrics.ts';
import type { UpstreamMessage } from '../qmp/upstream-message.ts';

/** Who sent a command: one per client, shared by all its commands. */
export interface Requester {
  readonly endpoint: string;
  /** The client's number, as in `query-clients` and the audit log. */
  readonly client: number;
  /** The client's peer, as in log lines. */
  readonly peer: string;
  /** The identity its certificate matched (a reload may change it). */
  identity: string | undefined;
  /** Its certificate's subject, on a TLS endpoint with client certificates. */
  readonly subject: string | undefined;
  /** Its endpoint's metrics. */
  readonly metrics: EndpointMetrics;
  /** Its identity's metrics, when it has an identity. */
  identityMetrics: IdentityMetrics | undefined;
  /** What has been logged about this client already, so a flood of one kind is a line or a few; and its commands refused by a policy. */
  readonly said: { tooLarge: boolean; tooLargeReply: boolean; refusals: number };
}

/** A command on its way to QEMU, and all that is reported of it once answered. */
export interface UpstreamCommand {
  readonly name: string;
  /** As the encoder wrote it; an out-of-band one gets its id when sent. */
  readonly bytes: Buffer;
  readonly oob: boolean;
  /** The client's id, as QEMU would echo it; undefined when it sent none. */
  readonly idText: string | undefined;
  /** Rewrites QEMU's reply (as QEMU sent it) before the client's id goes in. */
  readonly transform?: (reply: UpstreamMessage) => UpstreamMessage;
  /** Who sent it; none for qmp-mux's own. */
  readonly from?: Requester;
  /** When qmp-mux read it from its client, ms (`performance.now()`). */
  readonly receivedAt?: number;
  /** Its arguments, kept only when the audit log records them. */
  readonly args?: JsonObject | undefined;
}
