import t from 'tap';
import { qdictOrder } from '../../../src/json/qdict.ts';
import { modifiedUtf8 } from '../../../src/json/utf8.ts';
import { JsonNumber, type JsonValue } from '../../../src/json/value.ts';
import { quoteString, writeCompact, writeQemu } from '../../../src/json/writer.ts';

t.test('QDict order matches what QEMU 7.2 really writes', async (t) => {
  // Insertion order as QEMU builds each object -> order seen on the wire.
  t.same(qdictOrder(['return', 'id']), ['return', 'id'], 'success response');
  t.same(qdictOrder(['error', 'id']), ['id', 'error'], 'error response');
  t.same(qdictOrder(['class', 'desc']), ['class', 'desc'], 'error body');
  t.same(qdictOrder(['timestamp', 'event', 'data']), ['timestamp', 'event', 'data'], 'event');
  t.same(qdictOrder(['major', 'minor', 'micro']), ['micro', 'minor', 'major'], 'same bucket: newest first');
  t.same(qdictOrder(['running', 'singlestep', 'status']), ['status', 'singlestep', 'running'], 'query-status');
  t.same(qdictOrder(['version', 'capabilities']), ['version', 'capabilities'], 'greeting');
  // QEMU hashes the bytes it stores, U+0000 as C0 80 (the differential suite checks the order against QEMU).
  t.same([...modifiedUtf8('a\0b')], [0x61, 0xc0, 0x80, 0x62]);
  t.same([...modifiedUtf8('é')], [0xc3, 0xa9]);
});

t.test('strings are escaped as QEMU escapes them', async (t) => {
  t.equal(quoteString('plain /text/'), '"plain /text/"');
  t.equal(quoteString('"\\\b\f\n\r\t'), '"\\"\\\\\\b\\f\\n\\r\\t"');
  t.equal(quoteString('\x01\x7f\u00e9'), '"\\u0001\\u007F\\u00E9"');
  t.equal(quoteString('\u{1F600}'), '"\\uD83D\\uDE00"');
  t.equal(quoteString('\0'), '"\\u0000"');
});

t.test('writeQemu reproduces how QEMU echoes a value it parsed', async (t) => {
  const id: JsonValue = new Map<string, JsonValue>([
    ['b', new JsonNumber('1', true)],
    ['a', [new JsonNumber('1E2', false), null, true, false, 'x']],
  ]);
  t.equal(writeQemu(id), '{"a": [100, null, true, false, "x"], "b": 1}');
  t.equal(writeQemu([]), '[]');
  t.equal(writeQemu(new Map()), '{}');
});

t.test('writeCompact keeps order and every digit', async (t) => {
  const v: JsonValue = new Map<string, JsonValue>([
    ['z', new JsonNumber('18446744073709551615', true)],
    ['a', new JsonNumber('1E2', false)],
  ]);
  t.equal(writeCompact(v).text, '{"z":18446744073709551615,"a":1E2}');
});
