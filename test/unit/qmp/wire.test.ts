import t from 'tap';
import { JsonStreamer, QEMU_JSON_LIMITS } from '../../../src/json/streamer.ts';
import { JsonNumber, type JsonObject, type JsonValue } from '../../../src/json/value.ts';
import { frameOne, UpstreamFramer } from '../../../src/qmp/upstream-framer.ts';
import { isReaderError, type UpstreamMessage } from '../../../src/qmp/upstream-message.ts';
import {
  CommandEncoder,
  encodeCommand,
  errorReply,
  greetingForClients,
  negotiatedReply,
  replyForClient,
  returnReply,
  upstreamNegotiation,
  wireBuffer,
  withUpstreamId,
} from '../../../src/qmp/wire.ts';

const args = (entries: [string, JsonValue][]): JsonObject => new Map(entries);
const encoded = (name: string, a?: JsonObject, oob = false): string => {
  const bytes = encodeCommand(name, a, oob);
  if (!Buffer.isBuffer(bytes)) throw new Error(bytes.tooLarge);
  return bytes.toString('utf8');
};

/** What QEMU's reader makes of bytes: one message, its tokens and depth counted as QEMU counts them. */
function qemuReads(bytes: Buffer): JsonValue[] {
  const out: JsonValue[] = [];
  new JsonStreamer((m) => {
    if (m.error !== undefined) throw new Error(m.error);
    out.push(m.value);
  }).feed(bytes);
  return out;
}

t.test('replies qmp-mux writes itself, byte for byte as QEMU writes them', async (t) => {
  t.equal(errorReply(undefined, 'GenericError', 'no "way"'), '{"error": {"class": "GenericError", "desc": "no \\"way\\""}}\r\n');
  t.equal(errorReply('[1, 2]', 'CommandNotFound', 'x'), '{"id": [1, 2], "error": {"class": "CommandNotFound", "desc": "x"}}\r\n');
  t.equal(returnReply(undefined, new Map()), '{"return": {}}\r\n');
  t.equal(returnReply('"r"', [new JsonNumber('7', true)]), '{"return": [7], "id": "r"}\r\n');
  t.equal(negotiatedReply(undefined), '{"return": {}}\r\n');
  t.equal(negotiatedReply('1'), '{"return": {}, "id": 1}\r\n');
});

t.test('QEMU\'s replies made into the client\'s: its id where QEMU puts it, or none', async (t) => {
  const reply = (text: string, idText: string | undefined): string => replyForClient(frameOne(Buffer.from(text))!, idText).toString();
  t.equal(reply('{"return": {"a": "}"}}', '{"k": null}'), '{"return": {"a": "}"}, "id": {"k": null}}\r\n', 'in-band return: id last');
  t.equal(reply('{"error": {"class": "C", "desc": "d"}}', '-5'), '{"id": -5, "error": {"class": "C", "desc": "d"}}\r\n', 'in-band error: id first');
  t.equal(reply('{"return": 1}', undefined), '{"return": 1}\r\n', 'no id when none was sent');
  t.equal(reply('{"return": {}, "id": 3}', '"c"'), '{"return": {}, "id": "c"}\r\n', 'out-of-band: qmp-mux\'s id replaced');
  t.equal(reply('{"return": {}, "id": 3}', undefined), '{"return": {}}\r\n', 'or removed, last member');
  t.equal(reply('{"id": 3, "error": {"class": "C", "desc": "d"}}', undefined), '{"error": {"class": "C", "desc": "d"}}\r\n', 'or removed, first member');
  t.equal(reply('{"id": 3, "error": {"class": "C", "desc": "d"}}', 'inf'), '{"id": inf, "error": {"class": "C", "desc": "d"}}\r\n');
});

t.test('a large reply that came in pieces goes to its client as those pieces, the id spliced in between, nothing joined', async (t) => {
  const pad = 'x'.repeat(70 * 1024);
  const cases: [string, string | undefined][] = [
    [`{"return": {"a": "}", "pad": "${pad}"}}`, '{"k": null}'],
    [`{"error": {"class": "C", "desc": "${pad}"}}`, '-5'],
    [`{"return": ["${pad}", 2, 3]}`, undefined],
    [`{"return": {"pad": "${pad}"}, "id": 3}`, '"c"'],
    [`{"id": 3, "error": {"class": "C", "desc": "${pad}"}}`, undefined],
  ];
  for (const [text, idText] of cases) {
    const whole = replyForClient(frameOne(Buffer.from(text))!, idText);
    t.ok(Buffer.isBuffer(whole), 'a reply read at once is one buffer');
    for (const cuts of [[1], [2], [9], [10, 40000], [text.length >> 1], [text.length - 2], [text.length - 1], [1, 2, text.length - 1]]) {
      const messages: UpstreamMessage[] = [];
      const framer = new UpstreamFramer({ message: (m) => messages.push(m), garbage: () => undefined }, Infinity);
      // Other messages share the first and last reads, as they do when QEMU writes more than one.
      const stream = `{"return": {}}\r\n${text}\r\n{"return": {}}\r\n`;
      const at = [0, ...cuts.map((c) => c + 16), stream.length];
      for (let i = 1; i < at.length; i++) framer.feed(Buffer.from(stream.slice(at[i - 1], at[i])));
      const m = messages[1]!;
      const got = replyForClient(m, idText);
      const how = `${text.slice(0, 20)}... cut at ${cuts.join(',')}`;
      t.equal(wireBuffer(got).toString(), (whole as Buffer).toString(), how);
      t.ok(m.pieces?.every((p) => p.buffer.byteLength - p.length <= 2), `${how}: its pieces hold nothing else alive`);
      t.equal(Buffer.isBuffer(got), m.id !== undefined, `${how}: in-band as pieces, out-of-band (its id replaced) joined`);
    }
  }
  const small: UpstreamMessage[] = [];
  const framer = new UpstreamFramer({ message: (m) => small.push(m), garbage: () => undefined }, Infinity);
  framer.feed(Buffer.from('{"retu'));
  framer.feed(Buffer.from('rn": 1}\r\n'));
  t.equal(small[0]!.pieces, undefined, 'a small reply over two reads is joined (a cheap copy)');
  t.equal(small[0]!.bytes.toString(), '{"return": 1}');
});

t.test('the greeting clients get: QEMU\'s bytes, capabilities cut to what qmp-mux supports', async (t) => {
  const qemu = Buffer.from('{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob", "x-new"]}}');
  t.equal(greetingForClients(qemu, ['oob', 'x-new'], ['oob'])?.toString(), '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}\r\n');
  t.equal(greetingForClients(qemu, ['oob', 'x-new'], ['oob', 'x-new'])?.toString(), qemu.toString() + '\r\n', 'unchanged when all are supported');
  t.equal(greetingForClients(Buffer.from('{"QMP": {}}'), ['x'], []), undefined);
});

t.test('qmp-mux\'s own negotiation upstream carries its unique id', async (t) => {
  t.equal(upstreamNegotiation(['oob'], 'qmp-mux:1:ab'), '{"execute":"qmp_capabilities","arguments":{"enable":["oob"]},"id":"qmp-mux:1:ab"}');
  t.equal(upstreamNegotiation([], 'x'), '{"execute":"qmp_capabilities","id":"x"}');
});

t.test('commands for QEMU: compact, every digit, nothing escaped that QEMU reads raw', async (t) => {
  t.equal(encoded('query-status'), '{"execute":"query-status"}');
  t.equal(encoded('stop', args([])), '{"execute":"stop"}', 'empty arguments left out');
  t.equal(encoded('yank', undefined, true), '{"exec-oob":"yank"}');
  const a = args([
    ['size', new JsonNumber('18446744073709551615', true)],
    ['f', new JsonNumber('1E2', false)],
    ['s', 'é\u007f😀/\'"\\\n\t\u0000\u001f'],
    ['list', [null, true, false, [], new Map()]],
  ]);
  const text = encoded('x', a);
  t.equal(text, '{"execute":"x","arguments":{"size":18446744073709551615,"f":1E2,"s":"é\u007f😀/\'\\"\\\\\\n\\t\\u0000\\u001f","list":[null,true,false,[],{}]}}');
  t.same(qemuReads(Buffer.from(text, 'utf8')).length, 1, 'and it reads back as one message');
  t.equal(withUpstreamId(Buffer.from('{"exec-oob":"yank"}'), 12).toString(), '{"exec-oob":"yank","id":12}');
});

t.test('commands that would not fit in one QEMU message are refused, exactly at QEMU\'s limits', async (t) => {
  const { maxMessageSize, maxTokens, maxNesting } = QEMU_JSON_LIMITS;
  // Size: QEMU refuses once the token text plus one reaches 64 MiB.
  const frame = '{"execute":"x","arguments":{"a":""}}'.length;
  const fits = encodeCommand('x', args([['a', 'y'.repeat(maxMessageSize - 1 - frame)]]), false);
  t.ok(Buffer.isBuffer(fits) && fits.length === maxMessageSize - 1, 'the largest message QEMU reads');
  t.match(encodeCommand('x', args([['a', 'y'.repeat(maxMessageSize - frame)]]), false), { tooLarge: /67108864 bytes; QEMU reads at most 67108863/ });
  // A character written escaped counts as written.
  t.match(encodeCommand('x', args([['a', '"'.repeat((maxMessageSize - frame) / 2)]]), false), { tooLarge: /bytes/ }, 'quotes grow when escaped');
  t.ok(Buffer.isBuffer(encodeCommand('x', args([['a', '\u007f'.repeat(maxMessageSize - 1 - frame)]]), false)), 'DEL goes raw, one byte');
  // Tokens, as QEMU counts them: {"execute":"x","arguments":{"a":[n items],"b":[]}} is 18 + 2n.
  const list = (n: number): JsonValue[] => Array.from({ length: n }, () => new JsonNumber('0', true));
  const withTokens = (n: number): JsonObject => args([['a', list(n)], ['b', []]]);
  const most = (maxTokens - 18) / 2;
  const atLimit = encodeCommand('x', withTokens(most), false);
  t.ok(Buffer.isBuffer(atLimit), `${maxTokens} tokens fit`);
  t.equal(qemuReads(atLimit as Buffer).length, 1, 'and QEMU\'s reader takes them as one message');
  t.match(encodeCommand('x', withTokens(most + 1), false), { tooLarge: /2097154 tokens; QEMU reads at most 2097152/ });
  // Without "b": 13 + 2n tokens, an odd count: one more than the limit.
  t.match(encodeCommand('x', args([['a', list((maxTokens + 1 - 13) / 2)]]), false), { tooLarge: /2097153 tokens; QEMU reads at most 2097152/ }, 'one token more is refused');
  t.match(encodeCommand('x', withTokens(most), true), { tooLarge: /2097156 tokens/ }, 'room is kept for an out-of-band id');
  // Nesting: the outer brace counts.
  const nested = (depth: number): JsonValue => (depth === 0 ? null : [nested(depth - 1)]);
  t.ok(Buffer.isBuffer(encodeCommand('x', args([['a', nested(maxNesting - 2)]]), false)), `${maxNesting} deep fits`);
  t.match(encodeCommand('x', args([['a', nested(maxNesting - 1)]]), false), { tooLarge: /nesting 1025 deep; QEMU reads at most 1024/ });
});

t.test('errors only QEMU\'s reader produces are recognized', async (t) => {
  const is = (text: string): boolean => isReaderError(frameOne(Buffer.from(text))!);
  t.ok(is('{"error": {"class": "GenericError", "desc": "JSON parse error, stray \'\\u0001\'"}}'));
  t.ok(is('{"error": {"class": "GenericError", "desc": "JSON token size limit exceeded"}}'));
  t.ok(is('{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}'));
  t.notOk(is('{"error": {"class": "GenericError", "desc": "Parameter \'a\' is unexpected"}}'));
  t.notOk(is('{"error": {"class": "CommandNotFound", "desc": "JSON parse error, x"}}'), 'only GenericError');
  t.notOk(is('{"return": "JSON parse error, x"}'));
});

t.test('each encoder keeps its own argument-less commands: one Buffer per name, shared by no other encoder', async (t) => {
  const [a, b] = [new CommandEncoder(), new CommandEncoder()];
  const first = a.encode('query-status', undefined, false);
  t.equal(a.encode('query-status', new Map(), false), first, 'empty arguments are no arguments: the same bytes, encoded once');
  t.not(b.encode('query-status', undefined, false), first, 'another encoder (another mux) has its own');
  t.same(first, Buffer.from('{"execute":"query-status"}'));
  t.not(a.encode('query-status', undefined, true), first, 'an out-of-band command is encoded afresh (it gets an id)');
  t.match(a.encode('query-status', undefined, false, { maxBytes: 10, endpoint: 'ro', setting: 'its maxCommandBytes' }), { tooLarge: /endpoint 'ro' accepts \(26 bytes as sent to QEMU; its maxCommandBytes is 10\)/ }, 'a cached command still meets the cap of who sends it');
});

t.test("an endpoint's cap holds to the byte: a command exactly as long goes, one byte longer is refused", async (t) => {
  const cap = (maxBytes: number) => ({ maxBytes, endpoint: 'ro', setting: 'its maxCommandBytes' });
  /** What the encoder made of a command: the bytes to send, or why not. */
  const made = (encoded: Buffer | { tooLarge: string }): string => (Buffer.isBuffer(encoded) ? `sent: ${encoded.toString()}` : `refused: ${encoded.tooLarge}`);
  const encoder = new CommandEncoder();
  const plain = '{"execute":"query-status"}';
  t.equal(made(encoder.encode('query-status', undefined, false, cap(plain.length))), `sent: ${plain}`, `${plain.length} bytes under a cap of ${plain.length}`);
  t.match(made(encoder.encode('query-status', undefined, false, cap(plain.length - 1))), `refused: The command query-status is larger than endpoint 'ro' accepts (${plain.length} bytes as sent to QEMU; its maxCommandBytes is ${plain.length - 1})`, 'one byte over');
  const withArgs = args([['a', 'xyz']]);
  const sized = '{"execute":"query-status","arguments":{"a":"xyz"}}';
  t.equal(made(encoder.encode('query-status', withArgs, false, cap(sized.length))), `sent: ${sized}`, 'with arguments, exactly at the cap');
  t.match(made(encoder.encode('query-status', withArgs, false, cap(sized.length - 1))), `refused: The command query-status is larger than endpoint 'ro' accepts (${sized.length} bytes`, 'with arguments, one byte over');
});
