import t from 'tap';
import { QmpReader } from '../../../src/client/reader.ts';
import { writeCompact } from '../../../src/json/writer.ts';
import { splits } from '../../fixtures/feed.ts';

/** What the reader makes of a byte stream: each value re-serialized, or `error: <desc>`. */
function read(chunks: Uint8Array[], maxMessageSize?: number): string[] {
  const out: string[] = [];
  const reader = new QmpReader(
    (v) => out.push(writeCompact(v).text),
    (desc) => out.push(`error: ${desc}`),
    maxMessageSize,
  );
  for (const c of chunks) reader.feed(c);
  return out;
}

const fixtures: [name: string, input: string, expected: string[]][] = [
  ['greeting line', '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}\r\n',
    ['{"QMP":{"version":{"qemu":{"micro":22,"minor":2,"major":7},"package":""},"capabilities":["oob"]}}']],
  ['two messages on two lines', '{"return": {}, "id": 1}\r\n{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}\r\n',
    ['{"return":{},"id":1}', '{"timestamp":{"seconds":1,"microseconds":2},"event":"STOP"}']],
  ['pretty=on output spans lines', '{\r\n    "return": {\r\n        "a": [\r\n            1\r\n        ]\r\n    },\r\n    "id": 2\r\n}\r\n{\r\n    }\r\n',
    ['{"return":{"a":[1]},"id":2}', '{}']],
  ['64-bit integers keep their digits', '{"return": {"max": 18446744073709551615, "min": -9223372036854775808, "odd": 9007199254740993}, "id": 3}',
    ['{"return":{"max":18446744073709551615,"min":-9223372036854775808,"odd":9007199254740993},"id":3}']],
  ['doubles as QEMU writes them', '{"return": [0.10000000000000001, 1.8446744073709552e+19, -0.5]}',
    ['{"return":[0.10000000000000001,1.8446744073709552e+19,-0.5]}']],
  ['inf, -inf, nan and -nan are numbers', '{"return": [inf, -inf, nan, -nan], "id": inf}\r\n',
    ['{"return":[inf,-inf,nan,-nan],"id":inf}']],
  ['-inf last in an object, pretty', '{\r\n    "a": -inf\r\n}\r\n', ['{"a":-inf}']],
  ['strings with escapes and UTF-8', '{"a": "\\u00E9\\uD83D\\uDE00 \\"q\\" \\\\ \\r\\n", "b": "é"}', ['{"a":"é😀 \\"q\\" \\\\ \\r\\n","b":"é"}']],
  ['other strays are errors, and reading goes on', '{"a": @}{"b": 1}', ["error: JSON parse error, stray '@'", 'error: JSON parse error, expecting value', '{"b":1}']],
  ['a stray minus is an error', '{"a": -x}', ["error: JSON parse error, stray '-x'", 'error: JSON parse error, expecting value']],
  ['other keywords are errors', '{"a": infinity}', ["error: JSON parse error, invalid keyword 'infinity'"]],
  ['an unbalanced closer', '}{"c": true}', ['error: JSON parse error, expecting value', '{"c":true}']],
];

for (const [name, input, expected] of fixtures) {
  t.test(name, async (t) => {
    for (const { how, chunks } of splits(Buffer.from(input, 'utf8'))) {
      t.same(read(chunks), expected, how);
    }
  });
}

t.test('a message past the size limit is an error', async (t) => {
  const big = `{"a": "${'x'.repeat(100)}"}`;
  for (const { how, chunks } of splits(Buffer.from(big))) {
    t.equal(read(chunks, 64)[0], 'error: message larger than 64 bytes', how);
  }
  t.same(read([Buffer.from(`{"a": [${'1, '.repeat(30)}1]}`)], 64).slice(0, 1), ['error: message larger than 64 bytes'], 'many small tokens too');
  t.same(read([Buffer.from(`{"a": "${'x'.repeat(50)}"}`)], 64), ['{"a":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}'], 'up to the limit is fine');
});

t.test('a message larger than the buffer kept between messages, then a small one', async (t) => {
  const large = `{"return": "${'y'.repeat(2 * 1024 * 1024)}"}`;
  const out = read([Buffer.from(large), Buffer.from('{"id": 1}')]);
  t.equal(out.length, 2);
  t.equal(out[0], `{"return":"${'y'.repeat(2 * 1024 * 1024)}"}`);
  t.equal(out[1], '{"id":1}');
});
