/** How much of one client's input qmp-mux takes at a time. */

/** Input held for a client still waiting for its greeting; beyond it the socket is not read. */
export const EARLY_INPUT_CAP = 64 * 1024;
/**
 * What one client's input may cost per turn of the event loop before the
 * others are served: this many messages (a client sending garbage as fast
 * as it can makes every byte an error reply), and this many bytes (a large
 * message is parsed over several turns). Measured (bench scenario 7): a
 * well-behaved client's latency beside 20 garbage senders grows with the
 * message budget, and the garbage senders' throughput does not.
 */
export const MESSAGES_PER_TURN = 16;
export const BYTES_PER_TURN = 64 * 1024;
