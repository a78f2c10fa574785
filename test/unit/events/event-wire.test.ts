import t from 'tap';
import { JsonStreamer, type Incoming } from '../../../src/json/streamer.ts';
import { isObject, JsonNumber, type JsonValue } from '../../../src/json/value.ts';
import { writeQemu } from '../../../src/json/writer.ts';
import { EventJournal } from '../../../src/events/journal.ts';
import { LIVE_SEQ_KEY, queryEventsReply, withLiveSeq } from '../../../src/qmp/wire.ts';

const STOP = '{"timestamp": {"seconds": 1732197728, "microseconds": 959123}, "event": "STOP"}';
const JOB =
  '{"timestamp": {"seconds": 1732197729, "microseconds": 1}, "event": "BLOCK_JOB_COMPLETED", ' +
  '"data": {"device": "drive0", "len": 18446744073709551615, "offset": 9223372036854775807, "speed": 0, "type": "backup"}}';

function parse(bytes: Buffer): JsonValue[] {
  const out: Incoming[] = [];
  const streamer = new JsonStreamer((m) => out.push(m));
  streamer.feed(bytes);
  return out.map((m) => {
    if (m.error !== undefined) throw new Error(m.error);
    return m.value;
  });
}

function member(v: JsonValue | undefined, ...path: (string | number)[]): JsonValue | undefined {
  let cur = v;
  for (const key of path) {
    if (typeof key === 'number') cur = Array.isArray(cur) ? cur[key] : undefined;
    else cur = isObject(cur) ? cur.get(key) : undefined;
  }
  return cur;
}

t.test('live events: the sequence number is the last member, the rest is QEMU bytes', async (t) => {
  t.equal(LIVE_SEQ_KEY, '__org.qmp-mux_seq');
  t.equal(
    withLiveSeq(Buffer.from(STOP, 'latin1'), 42).toString('latin1'),
    '{"timestamp": {"seconds": 1732197728, "microseconds": 959123}, "event": "STOP", "__org.qmp-mux_seq": 42}',
  );
  const job = withLiveSeq(Buffer.from(JOB, 'latin1'), 9007199254740991);
  t.equal(job.toString('latin1'), JOB.slice(0, -1) + ', "__org.qmp-mux_seq": 9007199254740991}');
  const [value] = parse(Buffer.concat([job, Buffer.from('\r\n')]));
  t.same(member(value, 'data', 'len'), new JsonNumber('18446744073709551615', true), "QEMU's numbers intact");
  t.same(member(value, 'data', 'offset'), new JsonNumber('9223372036854775807', true));
  t.same(member(value, LIVE_SEQ_KEY), new JsonNumber('9007199254740991', true));
  t.same([...(value as Map<string, JsonValue>).keys()], ['timestamp', 'event', 'data', LIVE_SEQ_KEY], "QEMU's member order, then ours");
});

t.test('the query-events reply: byte for byte, with and without id, empty and not', async (t) => {
  const j = new EventJournal({ maxEvents: 2, maxBytes: 1 << 20 });
  t.equal(
    queryEventsReply(undefined, j.since(undefined, () => true)).toString('latin1'),
    '{"return": {"dropped": false, "last": 0, "events": []}}\r\n',
  );
  j.append('RESUME', Buffer.from(STOP.replace('STOP', 'RESUME'), 'latin1'));
  j.append('STOP', Buffer.from(STOP, 'latin1'));
  j.append('BLOCK_JOB_COMPLETED', Buffer.from(JOB, 'latin1'));
  const reply = queryEventsReply('"catch-up"', j.since(0, () => true));
  t.equal(
    reply.toString('latin1'),
    `{"return": {"dropped": true, "last": 3, "events": [{"event": ${STOP}, "seq": 2}, {"event": ${JOB}, "seq": 3}]}, "id": "catch-up"}\r\n`,
  );
  t.equal(
    queryEventsReply('7', j.since(2, (name) => name === 'STOP')).toString('latin1'),
    '{"return": {"dropped": false, "last": 3, "events": []}, "id": 7}\r\n',
  );
  const values = parse(reply);
  t.equal(values.length, 1, 'one JSON value');
  t.equal(writeQemu(values[0]!) + '\r\n', reply.toString('latin1'), 'exactly what QEMU would write for it: its member order, its numbers');
  t.same(member(values[0], 'return', 'events', 1, 'event', 'data', 'len'), new JsonNumber('18446744073709551615', true));
  t.same(member(values[0], 'return', 'events', 1, 'seq'), new JsonNumber('3', true));
});
