import t from 'tap';
import { restoreId } from '../../../src/proxy/reply.ts';
import { compactJson, UpstreamFramer, type UpstreamMessage } from '../../../src/qmp/upstream-framer.ts';
import { splits } from '../../fixtures/feed.ts';

function frame(chunks: Uint8Array[], max = Infinity): { messages: UpstreamMessage[]; garbage: string[] } {
  const messages: UpstreamMessage[] = [];
  const garbage: string[] = [];
  const framer = new UpstreamFramer({ message: (m) => messages.push(m), garbage: (b) => garbage.push(b.toString()) }, max);
  for (const c of chunks) framer.feed(Buffer.from(c));
  return { messages, garbage };
}

const stream = Buffer.from(
  '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}\r\n' +
    '{"return": {"status": "running", "x": "a\\"}{,"}, "id": "qmp-mux:t:1"}\r\n' +
    '{"id": "qmp-mux:t:2", "error": {"class": "GenericError", "desc": "no"}}\r\n' +
    '{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}\r\n' +
    '{"return": {}, "id": inf}\r\n' +
    '{"return": [1, {"a": [2]}], "id": 12}\r\n',
);

t.test('frames QEMU output however it is split', async (t) => {
  for (const { how, chunks } of splits(stream)) {
    const { messages, garbage } = frame(chunks);
    const summary = messages.map((m) => `${m.kind} ${m.id ? m.bytes.toString('latin1', m.id.valueStart, m.id.valueEnd) : '-'}`);
    const ok = summary.join('|') === 'greeting -|return "qmp-mux:t:1"|error "qmp-mux:t:2"|event -|return inf|return 12' && garbage.length === 0;
    if (!ok) {
      t.fail(how, { summary, garbage });
      return;
    }
  }
  t.pass('every split frames the same six messages');
});

t.test('restoring the client id, or removing it', async (t) => {
  const { messages } = frame([stream]);
  const ret = messages[1]!;
  const err = messages[2]!;
  t.equal(restoreId(ret.bytes, ret.id!, '{"a": 1}').toString(), '{"return": {"status": "running", "x": "a\\"}{,"}, "id": {"a": 1}}\r\n');
  t.equal(restoreId(ret.bytes, ret.id!, undefined).toString(), '{"return": {"status": "running", "x": "a\\"}{,"}}\r\n');
  t.equal(restoreId(err.bytes, err.id!, '"x"').toString(), '{"id": "x", "error": {"class": "GenericError", "desc": "no"}}\r\n');
  t.equal(restoreId(err.bytes, err.id!, undefined).toString(), '{"error": {"class": "GenericError", "desc": "no"}}\r\n');
});

t.test('pretty output is compacted to what a default monitor writes', async (t) => {
  const pretty = '{\r\n    "return": {\r\n        "a": [\r\n            1,\r\n            "x y"\r\n        ],\r\n        "e": {\r\n        }\r\n    },\r\n    "id": "qmp-mux:t:9"\r\n}\r\n';
  const { messages } = frame([Buffer.from(pretty)]);
  t.equal(messages.length, 1);
  const m = messages[0]!;
  t.equal(m.bytes.toString(), '{"return": {"a": [1, "x y"], "e": {}}, "id": "qmp-mux:t:9"}');
  t.equal(m.kind, 'return');
  t.equal(m.bytes.toString('latin1', m.id!.valueStart, m.id!.valueEnd), '"qmp-mux:t:9"');
  t.equal(compactJson(Buffer.from('{ "a" : "b , c" }')).toString(), '{"a": "b , c"}');
});

t.test('bytes outside any object are reported, not fatal', async (t) => {
  const { messages, garbage } = frame([Buffer.from('hello\r\n{"event": "X"}\r\n')]);
  t.same(garbage, ['hello\r\n']);
  t.equal(messages[0]!.kind, 'event');
});

t.test('a message over the limit is an error', async (t) => {
  t.throws(() => frame([Buffer.from('{"return": "' + 'x'.repeat(100))], 50), { code: 'QMPMUX_UPSTREAM_FRAMING' });
});
