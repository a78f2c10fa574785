import t from 'tap';
import { compactJson } from '../../../src/qmp/compact.ts';
import { UpstreamFramer } from '../../../src/qmp/upstream-framer.ts';
import type { UpstreamMessage } from '../../../src/qmp/upstream-message.ts';
import { splits } from '../../fixtures/feed.ts';

function frame(chunks: Uint8Array[], max = Infinity): { messages: UpstreamMessage[]; garbage: string[] } {
  const messages: UpstreamMessage[] = [];
  const garbage: string[] = [];
  const framer = new UpstreamFramer({ message: (m) => messages.push(m), garbage: (b) => garbage.push(b.toString()) }, max);
  for (const c of chunks) framer.feed(Buffer.from(c));
  return { messages, garbage };
}

/** kind, id text (or -), event name (or -) of each message. */
const summary = (messages: UpstreamMessage[]): string[] =>
  messages.map((m) => `${m.kind} ${m.id ? m.bytes.toString('latin1', m.id.valueStart, m.id.valueEnd) : '-'} ${m.event ?? '-'}`);

const stream = Buffer.from(
  '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}\r\n' +
    '{"return": {}, "id": "qmp-mux:4242:0a1b2c3d4e5f"}\r\n' +
    '{"return": {"status": "running", "x": "a\\"}{,"}}\r\n' +
    '{"error": {"class": "GenericError", "desc": "no"}}\r\n' +
    '{"id": 0, "error": {"class": "GenericError", "desc": "oob"}}\r\n' +
    '{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}\r\n' +
    '{"timestamp": {"seconds": -1, "microseconds": -1}, "event": "BLOCK_JOB_COMPLETED", "data": {"id": "job0", "event": "x"}}\r\n' +
    '{"return": {}, "id": inf}\r\n' +
    '{"return": [1, {"a": [2]}], "id": 12}\r\n' +
    '{"return": 5, "id": {"a": [1, "}"]}}\r\n' +
    '{"return": "str\\\\"}\r\n',
);

const expected = [
  'greeting - -',
  'return "qmp-mux:4242:0a1b2c3d4e5f" -',
  'return - -',
  'error - -',
  'error 0 -',
  'event - STOP',
  'event - BLOCK_JOB_COMPLETED',
  'return inf -',
  'return 12 -',
  'return {"a": [1, "}"]} -',
  'return - -',
];

t.test('frames QEMU output however it is split: kind, top-level id, event name', async (t) => {
  let checked = 0;
  for (const { how, chunks } of splits(stream)) {
    const { messages, garbage } = frame(chunks);
    const got = summary(messages);
    if (got.join('|') !== expected.join('|') || garbage.length > 0) {
      t.same(got, expected, how);
      t.same(garbage, [], how);
      return;
    }
    checked++;
  }
  t.equal(checked, stream.length + 1, 'whole, byte by byte, and split at every boundary: the same eleven messages');
});

t.test('message bytes are exactly the object, without line end', async (t) => {
  const { messages } = frame([stream]);
  t.equal(messages[2]!.bytes.toString(), '{"return": {"status": "running", "x": "a\\"}{,"}}');
  t.equal(messages[10]!.bytes.toString(), '{"return": "str\\\\"}');
});

t.test('where the id member sits, for splicing', async (t) => {
  const { messages } = frame([stream]);
  const first = messages[4]!;
  t.same(first.id, { comma: -1, keyStart: 1, valueStart: 7, valueEnd: 8, nextKey: 10 }, 'first member: the next key starts after it');
  const last = messages[8]!;
  const text = last.bytes.toString();
  t.same(last.id, { comma: text.lastIndexOf(','), keyStart: text.lastIndexOf('"id"'), valueStart: text.length - 3, valueEnd: text.length - 1, nextKey: -1 });
});

t.test('pretty output is compacted to what a default monitor writes', async (t) => {
  const pretty = '{\r\n    "return": {\r\n        "a": [\r\n            1,\r\n            "x y"\r\n        ],\r\n        "e": {\r\n        }\r\n    },\r\n    "id": 3\r\n}\r\n';
  for (const { how, chunks } of splits(Buffer.from(pretty))) {
    const { messages } = frame(chunks);
    if (messages.length !== 1 || messages[0]!.bytes.toString() !== '{"return": {"a": [1, "x y"], "e": {}}, "id": 3}') {
      t.fail(how, { got: messages.map((m) => m.bytes.toString()) });
      return;
    }
  }
  const m = frame([Buffer.from(pretty)]).messages[0]!;
  t.equal(m.kind, 'return');
  t.equal(m.bytes.toString('latin1', m.id!.valueStart, m.id!.valueEnd), '3');
  t.equal(compactJson(Buffer.from('{ "a" : "b , c" }')).toString(), '{"a": "b , c"}');
});

t.test('bytes outside any object are reported, not fatal', async (t) => {
  const { messages, garbage } = frame([Buffer.from('hello\r\n{"event": "X"}\r\n')]);
  t.same(garbage, ['hello\r\n']);
  t.same(summary(messages), ['event - X']);
});

t.test('a message longer than the limit is followed to its end and passed on as too large, however it is split', async (t) => {
  const limit = 64;
  const long = 'x'.repeat(100);
  const lines = [
    `{"return": "${long}", "id": 12}`,
    `{"id": 3, "error": {"class": "GenericError", "desc": "${long}"}}`,
    `{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "BIG", "data": {"x": "${long}"}}`,
    `{"error": {"class": "GenericError", "desc": "${long}\\"}{"}}`,
    `{"return": {"a": ["${long}"]}, "id": "qmp-mux:1:2"}`,
    '{"return": {}, "id": 4}',
  ];
  const input = Buffer.from(lines.map((l) => `${l}\r\n`).join(''));
  const length = (i: number): number => lines[i]!.length;
  const want = [
    `return 12 - ${length(0)}`,
    `error 3 - ${length(1)}`,
    `event - BIG ${length(2)}`,
    `error - - ${length(3)}`,
    `return -1 - ${length(4)}`,
    'return 4 -',
  ];
  const describe = (m: UpstreamMessage): string =>
    m.tooLarge ? `${m.kind} ${m.tooLarge.id ?? '-'} ${m.event ?? '-'} ${m.tooLarge.length}` : summary([m])[0]!;
  let checked = 0;
  for (const { how, chunks } of splits(input)) {
    const { messages, garbage } = frame(chunks, limit);
    const got = messages.map(describe);
    if (got.join('|') !== want.join('|') || garbage.length > 0 || messages.some((m) => m.tooLarge && m.tooLarge.limit !== limit)) {
      t.same(got, want, how);
      t.same(garbage, [], how);
      return;
    }
    checked++;
  }
  t.equal(checked, input.length + 1, 'whole, byte by byte, and at every boundary');
  const first = frame([input], limit).messages[2]!;
  t.equal(first.bytes.toString(), lines[2]!, 'its first bytes (up to 256) are kept, for the log');
  const huge = `{"return": "${'y'.repeat(1000)}"}`;
  t.equal(frame([Buffer.from(huge)], limit).messages[0]!.bytes.toString(), huge.slice(0, 256));
  t.equal(first.id, undefined, 'no id to splice: its bytes are gone');
});

t.test('the limit is checked on whole messages, not on what one read brings', async (t) => {
  const at = (n: number): string => `{"return": "${'x'.repeat(n - 14)}"}`;
  t.equal(at(100).length, 100);
  const { messages } = frame([Buffer.from(at(100) + at(101) + at(100))], 100);
  t.same(
    messages.map((m) => m.tooLarge?.length ?? m.bytes.length),
    [100, 101, 100],
    'in one read: 100 bytes pass, 101 do not',
  );
  t.same(messages.map((m) => m.tooLarge !== undefined), [false, true, false]);
  const split = frame([Buffer.from(at(101).slice(0, 50)), Buffer.from(at(101).slice(50))], 100).messages[0]!;
  t.equal(split.tooLarge?.length, 101, 'over two reads, the same');
});
