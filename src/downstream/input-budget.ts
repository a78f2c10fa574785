/**
 * What one client's input may cost per turn of the event loop: this many
 * messages (garbage makes every byte an error reply) and bytes (a large
 * message is parsed over several turns). Bench scenario 7: a client's
 * latency beside 20 garbage senders grows with the message budget, their
 * throughput does not.
 */
export const MESSAGES_PER_TURN = 16;
export const BYTES_PER_TURN = 64 * 1024;
