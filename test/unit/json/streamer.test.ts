import t from 'tap';
import { JsonLexer } from '../../../src/json/lexer.ts';
import { QEMU_JSON_LIMITS } from '../../../src/json/streamer.ts';
import { describeMessages, splits } from '../../fixtures/feed.ts';

/**
 * Fixtures: input bytes and what QEMU 7.2 makes of them (from its sources
 * and checked against a real QEMU, see the differential suite).
 */
const fixtures: [name: string, input: string | Buffer, expected: string[]][] = [
  ['one object', '{"execute":"query-status"}', ['{"execute":"query-status"}']],
  ['two objects, no newline', '{"a":1}{"b":2}', ['{"a":1}', '{"b":2}']],
  ['whitespace anywhere', ' \r\n\t{ "a" :\n[ 1 , 2 ]\r\n}\n', ['{"a":[1,2]}']],
  ['single-quoted strings', "{'execute': 'query-version', 'id': 'it''s'}", ['error: JSON parse error, expected separator in dict']],
  ['single quotes and \\\'', "{'a': 'it\\'s \"ok\"'}", ['{"a":"it\'s \\"ok\\""}']],
  ['escaped quote in double quotes', '{"a":"\\\'"}', ['{"a":"\'"}']],
  ['escapes', '{"a":"\\b\\f\\n\\r\\t\\/\\\\\\""}', ['{"a":"\\b\\f\\n\\r\\t/\\\\\\""}']],
  ['unicode escapes', '{"a":"\\u00e9\\ud83d\\ude00\\u0000"}', ['{"a":"é😀\\u0000"}']],
  ['raw UTF-8', Buffer.from('{"a":"é😀"}'), ['{"a":"é😀"}']],
  ['overlong NUL is U+0000', Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc0, 0x80, 0x22, 0x7d]), ['{"a":"\\u0000"}']],
  ['top-level scalar string', '"x"', ['"x"']],
  ['top-level number needs a delimiter', '1 ', ['1']],
  ['pending number stays pending', '1', []],
  ['pending keyword stays pending', 'true', []],
  ['keywords', '[true,false,null] ', ['[true,false,null]']],
  ['invalid keyword', 'tru}', ["error: JSON parse error, invalid keyword 'tru'", 'error: JSON parse error, expecting value']],
  ['big integers kept digit for digit', '{"a":18446744073709551615,"b":-9223372036854775808,"c":9007199254740993}', ['{"a":18446744073709551615,"b":-9223372036854775808,"c":9007199254740993}']],
  ['floats kept as written', '[0.1,1E2,-0,1e400,1.5e-3] ', ['[0.1,1E2,-0,1e400,1.5e-3]']],
  ['leading zero', '{"a":01}', ["error: JSON parse error, stray '01'", 'error: JSON parse error, expecting value']],
  ['missing value', '{"execute":}', ['error: JSON parse error, expecting value']],
  ['duplicate key', '{"a":1,"a":2}', ['error: JSON parse error, duplicate key']],
  ['duplicate key after escape decoding', '{"a":1,"\\u0061":2}', ['error: JSON parse error, duplicate key']],
  ['missing colon', '{"a" 1}', ['error: JSON parse error, missing : in object pair']],
  ['key not a string', '{1:2}', ['error: JSON parse error, key is not a string in object']],
  ['missing comma in dict', '{"a":1 "b":2}', ['error: JSON parse error, expected separator in dict']],
  ['missing comma in list', '[1 2]', ['error: JSON parse error, expected separator in list']],
  ['trailing comma', '{"a":1,}', ['error: JSON parse error, expecting value']],
  ['stray closer', '}', ['error: JSON parse error, expecting value']],
  ['mismatched closer', '{]', ['error: JSON parse error, expecting value']],
  ['mismatched closer later', '{"a":[}]', ['error: JSON parse error, expecting value']],
  ['control character in string', '{"execute":"query-status","id":"a\x01b"}', ["error: JSON parse error, stray '\"a\x01'", 'error: JSON parse error, expecting value']],
  ['control character alone', '\x01', ["error: JSON parse error, stray '\x01'"]],
  ['NUL ends the stray text', '\x00', ["error: JSON parse error, stray ''"]],
  ['NUL inside a string', '{"a":"x\x00y"}', ["error: JSON parse error, stray '\"x'", 'error: JSON parse error, expecting value']],
  ['0xFF byte', Buffer.from([0xff]), ["error: JSON parse error, stray '\ufffd'"]],
  ['0xFE inside a string', Buffer.from([0x22, 0x61, 0xfe, 0x22]), ["error: JSON parse error, stray '\"a\ufffd'"]],
  ['percent is not interpolation', '%', ["error: JSON parse error, stray '%'"]],
  ['recovery skips to structural characters', '@abc{"a":1}', ["error: JSON parse error, stray '@'", '{"a":1}']],
  ['resync by control character mid-message', '{"execute"\x01{"execute":"x"}', ["error: JSON parse error, stray '\x01'", '{"execute":"x"}']],
  ['invalid escape', '{"a":"\\q"}', ['error: JSON parse error, invalid escape sequence in string']],
  ['lone high surrogate', '{"a":"\\ud800"}', ['error: JSON parse error, \\ud800 is not a valid Unicode character']],
  ['high surrogate then non-surrogate', '{"a":"\\ud800\\u0041"}', ['error: JSON parse error, \\ud800 is not a valid Unicode character']],
  ['lone low surrogate', '{"a":"\\udc00"}', ['error: JSON parse error, \\udc00 is not a valid Unicode character']],
  ['noncharacter escape', '{"a":"\\uffff"}', ['error: JSON parse error, \\uffff is not a valid Unicode character']],
  ['short unicode escape', '{"a":"\\u12"}', ['error: JSON parse error, \\u12" is not a valid Unicode character']],
  ['non-hex unicode escape', '{"a":"\\uZZZZ"}', ['error: JSON parse error, \\uZZZZ is not a valid Unicode character']],
  ['truncated UTF-8', Buffer.from([0x22, 0xc3, 0x22]), ['error: JSON parse error, invalid UTF-8 sequence in string']],
  ['encoded surrogate', Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22]), ['error: JSON parse error, invalid UTF-8 sequence in string']],
  ['UTF-8 noncharacter U+FFFF', Buffer.from([0x22, 0xef, 0xbf, 0xbf, 0x22]), ['error: JSON parse error, invalid UTF-8 sequence in string']],
  ['beyond U+10FFFF', Buffer.from([0x22, 0xf4, 0x90, 0x80, 0x80, 0x22]), ['error: JSON parse error, invalid UTF-8 sequence in string']],
  ['overlong slash', Buffer.from([0x22, 0xc0, 0xaf, 0x22]), ['error: JSON parse error, invalid UTF-8 sequence in string']],
  ['exponent without digits', '[1e]', ["error: JSON parse error, stray '1e]'"]],
  ['minus alone', '[-]', ["error: JSON parse error, stray '-]'"]],
  ['dot without digits', '[1.]', ["error: JSON parse error, stray '1.]'"]],
  ['tab is skipped in recovery', '@\t{"a":1}', ["error: JSON parse error, stray '@'", '{"a":1}']],
];

for (const [name, raw, expected] of fixtures) {
  const input = typeof raw === 'string' ? Buffer.from(raw, 'latin1') : raw;
  t.test(name, async (t) => {
    for (const { how, chunks } of splits(input)) {
      t.same(describeMessages(chunks), expected, how);
    }
    t.same(describeMessages([input], undefined, 1), expected, 'one message at a time');
  });
}

t.test('feeding stops after the messages asked for, and the rest reads on as if never cut', async (t) => {
  const input = Buffer.from('}}{"a":1}}1 [2]"x" tru}\x01{"b":2}');
  const whole = describeMessages([input]);
  t.equal(whole.length, 11);
  for (const budget of [1, 2, 3, 4]) t.same(describeMessages([input], undefined, budget), whole, `${budget} at a time`);
  for (const { how, chunks } of splits(input)) {
    const got = describeMessages(chunks, undefined, 2);
    if (got.join('|') !== whole.join('|')) {
      t.same(got, whole, how);
      return;
    }
  }
  t.pass('split anywhere, two at a time: the same messages');
});

t.test('nesting: 1024 levels parse, 1025 do not', async (t) => {
  const ok = '['.repeat(1024) + ']'.repeat(1024);
  t.same(describeMessages([Buffer.from(ok)]), [ok]);
  const deep = Buffer.from('['.repeat(1025) + ']'.repeat(1025));
  const out = describeMessages([deep]);
  t.equal(out[0], 'error: JSON nesting depth limit exceeded');
  t.equal(out.length, 1026, 'the closers that follow each fail on their own, as in QEMU');
  t.ok(out.slice(1).every((m) => m === 'error: JSON parse error, expecting value'));
});

t.test('token count limit', async (t) => {
  const limits = { ...QEMU_JSON_LIMITS, maxTokens: 10 };
  const out = describeMessages([Buffer.from('[1,2,3,4,5,6]')], limits);
  t.equal(out[0], 'error: JSON token count limit exceeded');
  t.same(describeMessages([Buffer.from('[1,2,3,4]')], limits), ['[1,2,3,4]'], 'under the limit is fine');
});

t.test('the limits hold to the token: as many as allowed pass, one more does not', async (t) => {
  // maxTokens 10: [1,2,3,{}] is ten tokens, [1,2,3,4,5] eleven.
  const tokens = { ...QEMU_JSON_LIMITS, maxTokens: 10 };
  t.same(describeMessages([Buffer.from('[1,2,3,{}]')], tokens), ['[1,2,3,{}]']);
  t.same(describeMessages([Buffer.from('[1,2,3,4,5]')], tokens), ['error: JSON token count limit exceeded']);
  // maxMessageSize 32: the token text plus one must stay within it. {"a":"…"} with n characters is n + 8 of text.
  const size = { ...QEMU_JSON_LIMITS, maxMessageSize: 32 };
  const text = (n: number): string => `{"a":"${'x'.repeat(n)}"}`;
  t.same(describeMessages([Buffer.from(text(23))], size), [text(23)], '31 bytes of token text');
  t.same(describeMessages([Buffer.from(text(24))], size), ['error: JSON token size limit exceeded'], '32 bytes');
  t.same(describeMessages([Buffer.from(` { "a" :\t"${'x'.repeat(23)}" } `)], size), [text(23)], 'whitespace is not token text');
});

t.test('message size limit counts token text', async (t) => {
  const limits = { ...QEMU_JSON_LIMITS, maxMessageSize: 32 };
  t.same(describeMessages([Buffer.from('{"a":"0123456789"}')], limits), ['{"a":"0123456789"}']);
  const out = describeMessages([Buffer.from('{"a":"0123456789","b":"0123456789"}')], limits);
  t.equal(out[0], 'error: JSON token size limit exceeded');
});

t.test('one token over the size limit is cut off and the rest lexed anew', async (t) => {
  const limits = { ...QEMU_JSON_LIMITS, maxMessageSize: 16 };
  const out = describeMessages([Buffer.from('"' + 'a'.repeat(40) + '"\x01{"ok":1}')], limits);
  t.same(out, [
    'error: JSON token size limit exceeded',
    // the rest of the string is lexed as new input: a keyword, itself cut, then
    // its remainder, then a string ended by the control character
    'error: JSON token size limit exceeded',
    "error: JSON parse error, invalid keyword 'aaaaaaa'",
    'error: JSON parse error, stray \'"\x01\'',
    '{"ok":1}',
  ]);
});

t.test('invalid keyword text is cut where QEMU cuts it', async (t) => {
  const out = describeMessages([Buffer.from('[' + 'x'.repeat(2000) + ']')]);
  t.equal(out[0], 'error: JSON parse error, ' + ("invalid keyword '" + 'x'.repeat(2000)).slice(0, 1023));
});

t.test('memory: the lexer\'s buffer shrinks back after a big message', async (t) => {
  // A sink that is done with every token, as the streamer is once a message ends.
  const lexer = new JsonLexer({ token: () => true }, QEMU_JSON_LIMITS.maxMessageSize);
  lexer.feed(Buffer.from(`"${'x'.repeat(1 << 20)}`));
  t.ok(lexer.text.length > 1 << 20, 'it grew to hold the big token');
  lexer.feed(Buffer.from('"{"b":1}'));
  t.ok(lexer.text.length <= 64 * 1024, `then shrank back (${lexer.text.length} bytes)`);
  const out = describeMessages([Buffer.from(`{"a":"${'x'.repeat(1 << 20)}"}`), Buffer.from('{"b":1}')]);
  t.same(out.slice(1), ['{"b":1}'], 'and the next message is read as usual');
});
