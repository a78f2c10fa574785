import t from 'tap';
import { JsonNumber, type JsonValue } from '../../../src/json/value.ts';
import { measureCompact, writeCompact, writeCompactWithin } from '../../../src/json/writer.ts';

const STRINGS = ['', 'a', 'query-status', 'é', '😀', '"quoted"', 'back\\slash', 'tab\tnew\nline', '\x00\x1f\x7f', '\ud800 lone', 'x'.repeat(40)];

/** Values of every kind, nested, from a fixed seed. */
function valueOf(seed: number, depth: number): JsonValue {
  const kind = seed % 7;
  if (depth > 3 || kind === 0) return STRINGS[seed % STRINGS.length]!;
  if (kind === 1) return new JsonNumber(String(seed * 7919), true);
  if (kind === 2) return new JsonNumber('-1.5e-3', false);
  if (kind === 3) return [null, true, false][seed % 3]!;
  if (kind === 4) return Array.from({ length: seed % 4 }, (_, i) => valueOf(seed * 31 + i, depth + 1));
  return new Map(Array.from({ length: seed % 4 }, (_, i) => [STRINGS[(seed + i) % STRINGS.length]! + i, valueOf(seed * 17 + i, depth + 1)] as const));
}

t.test('measuring a value counts what writing it makes, byte for byte', async (t) => {
  for (let seed = 0; seed < 2000; seed++) {
    const v = valueOf(seed, 0);
    const written = writeCompact(v);
    const want = { bytes: Buffer.byteLength(written.text, 'utf8'), tokens: written.tokens, depth: written.depth };
    const got = measureCompact(v);
    if (got.bytes !== want.bytes || got.tokens !== want.tokens || got.depth !== want.depth) return void t.same(got, want, `seed ${seed}: ${written.text}`);
  }
  t.pass('2000 values');
});

t.test('writing within a length gives up past it, and measures instead', async (t) => {
  const v = new Map<string, JsonValue>([['a', Array.from({ length: 1000 }, () => new JsonNumber('1', true))]]);
  const text = writeCompact(v).text;
  t.same(writeCompactWithin(v, text.length), writeCompact(v), 'exactly at the limit: written');
  t.same(writeCompactWithin(v, text.length - 1), { bytes: text.length, tokens: writeCompact(v).tokens, depth: 2 }, 'one character past it: measured');
  t.notOk('text' in writeCompactWithin(v, 10), 'far past it: measured');
});
