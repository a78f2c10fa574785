import t from 'tap';
import { formatJson } from '../../../src/client/format.ts';
import { fromJson, toJson, type QmpInput } from '../../../src/client/values.ts';
import { JsonNumber } from '../../../src/json/value.ts';
import { writeCompact } from '../../../src/json/writer.ts';
import { json } from '../../fixtures/json-text.ts';

const parse = json;

t.test('fromJson: safe integers are numbers, larger ones bigints, doubles numbers', async (t) => {
  const v = fromJson(parse('{"small": 42, "neg": -7, "max-safe": 9007199254740991, "past": 9007199254740992, "u64": 18446744073709551615, "i64": -9223372036854775808, "half": 0.5, "exp": 1E2, "zero": -0}'));
  t.same(v, { small: 42, neg: -7, 'max-safe': 9007199254740991, past: 9007199254740992n, u64: 18446744073709551615n, i64: -9223372036854775808n, half: 0.5, exp: 100, zero: -0 });
  const o = v as Record<string, unknown>;
  t.equal(typeof o.small, 'number');
  t.equal(typeof o.past, 'bigint');
  t.equal(typeof o.exp, 'number', 'an exponent is not an integer literal');
});

t.test("fromJson: QEMU's inf, -inf, nan and -nan", async (t) => {
  const v = fromJson(parse('[inf, -inf, nan, -nan]')) as number[];
  t.equal(v[0], Infinity);
  t.equal(v[1], -Infinity);
  t.ok(Number.isNaN(v[2]) && Number.isNaN(v[3]));
});

t.test('fromJson: strings, booleans, null, arrays, member order, __proto__', async (t) => {
  const v = fromJson(parse('{"z": [true, false, null, "s"], "a": {}, "__proto__": 1}')) as Record<string, unknown>;
  t.same(Object.keys(v), ['z', 'a', '__proto__'], 'member order kept, __proto__ an ordinary member');
  t.same(v.z, [true, false, null, 's']);
  t.equal(Object.getPrototypeOf(v), Object.prototype, 'the prototype is untouched');
  t.equal(Object.getOwnPropertyDescriptor(v, '__proto__')?.value, 1);
});

t.test('toJson: numbers written exactly, bigints digit for digit, JsonNumber as its text', async (t) => {
  const input: QmpInput = { a: 1, b: -2.5, c: 18446744073709551615n, d: new JsonNumber('1e400', false), e: [null, true, 's'], f: { g: 0.1 }, skip: undefined, z: -0 };
  t.equal(writeCompact(toJson(input)).text, '{"a":1,"b":-2.5,"c":18446744073709551615,"d":1e400,"e":[null,true,"s"],"f":{"g":0.1},"z":0}');
  t.equal(writeCompact(toJson(Object.assign(Object.create(null) as object, { x: 1 }) as QmpInput)).text, '{"x":1}', 'a null-prototype object');
});

t.test('toJson: round trip of what fromJson gives', async (t) => {
  const text = '{"u64":18446744073709551615,"list":[1,-9223372036854775808,0.5,"x",null,false],"o":{}}';
  t.equal(writeCompact(toJson(fromJson(parse(text)))).text, text);
});

t.test('toJson: values JSON cannot carry are refused, naming where', async (t) => {
  const cases: [QmpInput, RegExp][] = [
    [{ a: 2 ** 64 }, /^arguments\.a: 18446744073709552000 is past 2\^53 .*pass it as a bigint$/],
    [{ a: [1, NaN] }, /^arguments\.a\[1\]: NaN cannot be sent in JSON$/],
    [{ a: Infinity }, /Infinity cannot be sent/],
    [{ a: new Map() as unknown as QmpInput }, /^arguments\.a: a Map cannot be sent in JSON$/],
    [{ a: (() => 1) as unknown as QmpInput }, /^arguments\.a: a function cannot be sent in JSON$/],
    [{ a: Symbol('s') as unknown as QmpInput }, /^arguments\.a: a symbol cannot be sent/],
  ];
  for (const [input, message] of cases) {
    t.throws(() => toJson(input, 'arguments'), { name: 'ValueError', code: 'QMPMUX_VALUE', message }, message.source);
  }
});

t.test('formatJson: compact for scripts, indented for people, digits as received', async (t) => {
  const v = parse('{"return": {"big": 18446744073709551615, "f": 0.10000000000000001, "inf": inf, "list": [1, {"a": []}], "empty": {}, "s": "\\u00E9\\n"}}');
  t.equal(formatJson(v, false), '{"return":{"big":18446744073709551615,"f":0.10000000000000001,"inf":inf,"list":[1,{"a":[]}],"empty":{},"s":"é\\n"}}');
  t.equal(
    formatJson(v, true),
    ['{', '  "return": {', '    "big": 18446744073709551615,', '    "f": 0.10000000000000001,', '    "inf": inf,', '    "list": [', '      1,', '      {', '        "a": []', '      }', '    ],', '    "empty": {},', '    "s": "é\\n"', '  }', '}'].join('\n'),
  );
  t.equal(formatJson('x', true), '"x"');
  t.equal(formatJson(null, true), 'null');
});
