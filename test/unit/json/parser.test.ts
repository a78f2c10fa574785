import t from 'tap';
import { Tok } from '../../../src/json/lexer.ts';
import { JsonParser, VALUE_COST } from '../../../src/json/parser.ts';
import { JsonStreamer } from '../../../src/json/streamer.ts';
import { CORPUS } from '../../fixtures/corpus.ts';
import { describeMessages } from '../../fixtures/feed.ts';

/** Every client input of the differential corpus, one after another: what QEMU was seen to make of each. */
const corpus = Buffer.concat(
  CORPUS.flatMap((c) => c.steps).flatMap((s) => (typeof s === 'string' ? [Buffer.from(s, 'latin1')] : Buffer.isBuffer(s) ? [s] : 'byteByByte' in s ? [Buffer.from(s.byteByByte, 'latin1')] : [])),
);

/** A small deterministic generator (mulberry32), so a failing split can be replayed. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function randomSplit(input: Buffer, next: () => number, longest: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < input.length; ) {
    const n = 1 + Math.floor(next() * longest);
    chunks.push(input.subarray(at, at + n));
    at += n;
  }
  return chunks;
}

t.test('the corpus parses the same fed whole, byte by byte, and in random pieces', async (t) => {
  const whole = describeMessages([corpus]);
  t.ok(whole.length > 100, `${whole.length} messages`);
  t.same(describeMessages([...corpus].map((b) => Uint8Array.of(b))), whole, 'byte by byte');
  for (let seed = 1; seed <= 50; seed++) {
    const chunks = randomSplit(corpus, random(seed), seed % 2 === 0 ? 8 : 200);
    const got = describeMessages(chunks, undefined, seed % 3 === 0 ? 1 : undefined);
    if (got.join('\n') !== whole.join('\n')) return void t.same(got, whole, `seed ${seed}`);
  }
  t.pass('50 random splits: the same messages');
});

t.test('nested values and every error of the grammar, split at random, parse as whole', async (t) => {
  const inputs = [
    '{"execute":"x","arguments":{"a":[1,[2,{"b":[[],{}]}],-3.5e2,"\\u00e9",true,null],"c":{}}}',
    '{{"a" 1}:2}', '{[1,2]:3}', '{[1 2]:3}', '{"a":1,"a":{"b" 2}}', '{"a":{"b":1},"a":2}',
    '[1,]', '{"a":1,}', '[1:2]', '{"a",1}', '{"a":1:2}', '[,1]', '{:1}', '[[[[]]]]]', '{"a":[}', '["\\x"]',
    '[tru,"\\ud800"]', '["\\q",tru]', '{"a":1 2}', '{"a" 1 ]', '[{"a":1}}', ' ]', ':', ',', '1 ', '"s"', 'null ',
  ].join('');
  const whole = describeMessages([Buffer.from(inputs)]);
  const next = random(7);
  for (let i = 0; i < 200; i++) {
    const got = describeMessages(randomSplit(Buffer.from(inputs), next, 1 + (i % 16)));
    if (got.join('\n') !== whole.join('\n')) return void t.same(got, whole, `split ${i}`);
  }
  t.same(whole.slice(0, 3), [
    '{"execute":"x","arguments":{"a":[1,[2,{"b":[[],{}]}],-3.5e2,"é",true,null],"c":{}}}',
    'error: JSON parse error, missing : in object pair',
    'error: JSON parse error, key is not a string in object',
  ], 'a key that is a container is parsed whole before it is found not to be a string');
  t.equal(whole[4], 'error: JSON parse error, missing : in object pair', 'an error inside a duplicate key\'s value comes first');
  t.equal(whole[5], 'error: JSON parse error, duplicate key', 'a duplicate is found once its value is parsed');
});

t.test('the value is built as its tokens arrive: the last byte only finishes it', async (t) => {
  const n = 20000;
  const body = Buffer.from(`{"execute":"query-status","arguments":{"a":[${'1,'.repeat(n - 1)}1]}}`);
  const out: string[] = [];
  const streamer = new JsonStreamer((m) => out.push(m.error ?? 'value'));
  streamer.feed(body.subarray(0, body.length - 3));
  t.ok(streamer.heldBytes >= n * VALUE_COST.number, `every number is already parsed and counted before the end (${streamer.heldBytes} bytes held)`);
  streamer.feed(body.subarray(body.length - 3));
  t.same(out, ['value']);
  t.equal(streamer.heldBytes, 0, 'nothing held once the message is done');
});

t.test('after a message\'s first error nothing more of it is parsed, and its partial value is let go', async (t) => {
  const out: string[] = [];
  const streamer = new JsonStreamer((m) => out.push(m.error ?? 'value'));
  streamer.feed(Buffer.from(`[${'1,'.repeat(1000)}`));
  t.ok(streamer.heldBytes > 1000 * VALUE_COST.number, 'a thousand numbers held');
  streamer.feed(Buffer.from('"\\q",'));
  t.equal(streamer.heldBytes, 0, 'the invalid escape drops the partial value');
  streamer.feed(Buffer.from(`${'{"a":[2,3]},'.repeat(1000)}tru,`));
  t.equal(streamer.heldBytes, 0, 'what follows is only counted: no value built');
  t.same(out, [], 'and the message has not ended');
  streamer.feed(Buffer.from(']'));
  t.same(out, ['JSON parse error, invalid escape sequence in string'], 'its first error, when it ends');
});

t.test('the parser takes tokens one at a time and counts what it holds', async (t) => {
  const p = new JsonParser();
  const text = Buffer.from('[{"a"');
  const steps: number[] = [];
  p.token(Tok.LSquare, text, 0, 1);
  steps.push(p.held);
  p.token(Tok.LCurly, text, 1, 2);
  steps.push(p.held);
  p.token(Tok.String, text, 2, 5);
  steps.push(p.held);
  t.same(steps, [VALUE_COST.list, VALUE_COST.list + VALUE_COST.dict, VALUE_COST.list + VALUE_COST.dict + VALUE_COST.string + 2]);
  t.same(p.end(), { error: 'JSON parse error, premature EOI' }, 'a message ended early');
  p.reset();
  t.equal(p.held, 0);
});
