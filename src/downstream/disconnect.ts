/** Why a client connection ended, as the log says it; counted per reason (`query-proxy`'s `disconnects`, the metrics). */
export const DISCONNECT_REASONS = {
  closed: 'closed by the client',
  finished: 'finished after closing its input',
  'slow-reader': 'not reading its output',
  'negotiation-timeout': 'did not negotiate in time',
  'greeting-timeout': 'no QEMU to greet it in time',
  'too-many-clients': 'too many clients on the endpoint',
  'no-descriptors': 'qmp-mux out of file descriptors',
  'qemu-gone': 'QEMU disconnected',
  'reply-mismatch': "QEMU's replies stopped matching the commands in flight",
  stopping: 'qmp-mux stopping',
  'endpoint-removed': 'its endpoint was removed by a reload',
  error: 'socket error',
} as const;
export type DisconnectReason = keyof typeof DISCONNECT_REASONS;
