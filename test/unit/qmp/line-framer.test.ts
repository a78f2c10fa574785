import t from 'tap';
import { LineFramer } from '../../../src/qmp/line-framer.ts';
import { restoreId } from '../../../src/proxy/reply.ts';
import { UpstreamFramer, type UpstreamMessage } from '../../../src/qmp/upstream-framer.ts';
import { splits } from '../../fixtures/feed.ts';

/** Lines as a compact QEMU monitor writes them, the tricky shapes included. */
const lines = [
  '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}',
  '{"return": {}, "id": "qmp-mux"}',
  '{"return": {"status": "running", "singlestep": false, "running": true}, "id": 0}',
  '{"id": 12, "error": {"class": "GenericError", "desc": "x, \\"id\\": 3}"}}',
  '{"timestamp": {"seconds": 1795265558, "microseconds": 835369}, "event": "STOP"}',
  '{"timestamp": {"seconds": -1, "microseconds": -1}, "event": "BLOCK_JOB_COMPLETED", "data": {"device": "d", "id": 4}}',
  '{"return": {"nested": {"id": 5}}, "id": 6}',
  '{"return": [{"name": "a"}, {"id": 9}], "id": 7}',
  '{"return": "text with , \\"id\\": 8}", "id": 8}',
  '{"return": {}}',
  '{"return": 5}',
  '{"return": [1, 2], "id": 10}',
  '{"return": "x, \\"id\\": 11"}',
  '{"return": {}, "id": inf}',
  '{"what": "else"}',
];
const stream = Buffer.from(lines.map((l) => l + '\r\n').join(''), 'latin1');

function summary(m: UpstreamMessage): string {
  const id = m.id ? m.bytes.toString('latin1', m.id.valueStart, m.id.valueEnd) : '-';
  const withoutId = m.id ? restoreId(m.bytes, m.id, undefined).toString('latin1') : '-';
  const withId = m.id ? restoreId(m.bytes, m.id, '"X"').toString('latin1') : '-';
  return `${m.kind}|${id}|${m.event ?? '-'}|${m.bytes.toString('latin1')}|${withoutId}|${withId}`;
}

t.test('line framing agrees with full framing on every shape, however the stream is split', async (t) => {
  const expected: string[] = [];
  new UpstreamFramer({ message: (m) => expected.push(summary(m)), garbage: () => expected.push('garbage') }, Infinity).feed(stream);
  t.equal(expected.length, lines.length);
  for (const { how, chunks } of splits(stream)) {
    const got: string[] = [];
    const framer = new LineFramer({ message: (m) => got.push(summary(m)), garbage: () => got.push('garbage') }, Infinity);
    for (const c of chunks) framer.feed(Buffer.from(c));
    if (got.join('\n') !== expected.join('\n')) {
      t.same(got, expected, how);
      return;
    }
  }
  t.pass('same messages, kinds, ids, event names and id rewrites for every split');
});

t.test('the shapes it reads itself, and the id spans it finds', async (t) => {
  const got: UpstreamMessage[] = [];
  new LineFramer({ message: (m) => got.push(m), garbage: () => undefined }, Infinity).feed(stream);
  t.same(got.map((m) => m.kind), ['greeting', 'return', 'return', 'error', 'event', 'event', 'return', 'return', 'return', 'return', 'return', 'return', 'return', 'return', 'unknown']);
  t.equal(restoreId(got[6]!.bytes, got[6]!.id!, '1').toString(), '{"return": {"nested": {"id": 5}}, "id": 1}\r\n', 'a nested id is not the reply\'s id');
  t.equal(got[5]!.event, 'BLOCK_JOB_COMPLETED');
  t.same(
    got.slice(9, 13).map((m) => m.id && m.bytes.toString('latin1', m.id.valueStart, m.id.valueEnd)),
    [undefined, undefined, '10', undefined],
    'a number at the end of a reply is its id only after `, "id": `',
  );
});

t.test('garbage lines are reported; size limit holds for a line without end', async (t) => {
  const garbage: string[] = [];
  new LineFramer({ message: () => undefined, garbage: (b) => garbage.push(b.toString()) }, Infinity).feed(Buffer.from('hello\r\n\r\n'));
  t.same(garbage, ['hello']);
  t.throws(() => new LineFramer({ message: () => undefined, garbage: () => undefined }, 16).feed(Buffer.from('{"return": "' + 'x'.repeat(40))), { code: 'QMPMUX_UPSTREAM_FRAMING' });
});
