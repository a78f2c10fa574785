/**
 * What one client's input may cost per turn of the event loop: this many
 * messages (garbage makes every byte an error reply) and bytes (a large
 * message is parsed over several turns), and its messages end the turn
 * once the replies qmp-mux made for them at once pass REPLY_BYTES_PER_TURN
 * (`__org.qmp-mux_query-events` can answer megabytes from a 60-byte
 * command). Bench scenario 7: a client's latency beside 20 garbage senders
 * grows with the message budget, their throughput does not.
 */
export const MESSAGES_PER_TURN = 16;
export const BYTES_PER_TURN = 64 * 1024;
export const REPLY_BYTES_PER_TURN = 64 * 1024;
