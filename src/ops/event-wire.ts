import { EXTENSION_PREFIX } from '../policy/presets.ts';
import { EOL } from '../qmp/wire.ts';
import type { JournalQuery } from '../events/journal.ts';

/**
 * The bytes qmp-mux writes around QEMU's events: the sequence number added
 * to a live event, and the `query-events` reply. QEMU's event bytes are
 * spliced in as they came, never re-serialized, so numbers and member
 * order stay QEMU's; what qmp-mux adds is written as QEMU would write it.
 */

/** The member added as the last one of a live event on endpoints that ask for it. */
export const LIVE_SEQ_KEY = `${EXTENSION_PREFIX}seq`;

/**
 * QEMU's event object (compact, without line terminator, as the upstream
 * framer hands it over; never empty, it has at least `event`) with
 * `"__org.qmp-mux_seq": SEQ` added as its last member.
 */
export function withLiveSeq(event: Buffer, seq: number): Buffer {
  return Buffer.concat([event.subarray(0, event.length - 1), Buffer.from(`, "${LIVE_SEQ_KEY}": ${seq}}`, 'latin1')]);
}

/**
 * The complete reply to `__org.qmp-mux_query-events`, members in the order
 * QEMU writes them (its hash order, as for every reply qmp-mux makes):
 * `{"return": {"dropped": B, "last": N, "events": [{"event": EVENT, "seq": N}, ...]}, "id": ID}`
 * where EVENT is QEMU's object as it sent it. `idText` is the client's id as
 * QEMU would echo it.
 */
export function queryEventsReply(idText: string | undefined, result: JournalQuery): Buffer {
  const parts: Buffer[] = [Buffer.from(`{"return": {"dropped": ${result.dropped}, "last": ${result.last}, "events": [`, 'latin1')];
  result.events.forEach((e, i) => {
    parts.push(Buffer.from(i === 0 ? '{"event": ' : ', {"event": ', 'latin1'), e.bytes, Buffer.from(`, "seq": ${e.seq}}`, 'latin1'));
  });
  parts.push(Buffer.from(idText === undefined ? `]}}${EOL}` : `]}, "id": ${idText}}${EOL}`, 'latin1'));
  return Buffer.concat(parts);
}
