import t from 'tap';
import { formatG17, qemuNumberText } from '../../../src/json/number.ts';
import { JsonNumber } from '../../../src/json/value.ts';

// Expected texts printed by glibc's printf("%.17g", strtod(input)).
const g17: [string, string][] = [
  ['0.1', '0.10000000000000001'],
  ['1e21', '1e+21'],
  ['1.5', '1.5'],
  ['100', '100'],
  ['1e16', '10000000000000000'],
  ['1e17', '1e+17'],
  ['123456789012345678', '1.2345678901234568e+17'],
  ['0.0001', '0.0001'],
  ['0.00001', '1.0000000000000001e-05'],
  ['18446744073709551616', '1.8446744073709552e+19'],
  ['-9223372036854775809', '-9.2233720368547758e+18'],
  ['33554432.0009765625', '33554432.000976562'], // an exact tie: rounds to even
  ['1e-400', '0'],
  ['-1e-400', '-0'],
  ['5e-324', '4.9406564584124654e-324'],
  ['1.7976931348623157e308', '1.7976931348623157e+308'],
  ['1e400', 'inf'],
  ['-1e400', '-inf'],
  ['123.456', '123.456'],
  ['9007199254740993.0', '9007199254740992'],
];

t.test('%.17g as glibc prints it', async (t) => {
  for (const [input, expected] of g17) t.equal(formatG17(Number(input)), expected, input);
  t.equal(formatG17(NaN), 'nan');
});

t.test('integers: int64, then uint64, then double, as QEMU parses them', async (t) => {
  const cases: [string, string][] = [
    ['0', '0'],
    ['-0', '0'],
    ['9007199254740993', '9007199254740993'],
    ['9223372036854775807', '9223372036854775807'],
    ['9223372036854775808', '9223372036854775808'],
    ['18446744073709551615', '18446744073709551615'],
    ['-9223372036854775808', '-9223372036854775808'],
    ['18446744073709551616', '1.8446744073709552e+19'],
    ['-9223372036854775809', '-9.2233720368547758e+18'],
  ];
  for (const [input, expected] of cases) t.equal(qemuNumberText(new JsonNumber(input, true)), expected, input);
});

t.test('floats always go through a double', async (t) => {
  t.equal(qemuNumberText(new JsonNumber('1E2', false)), '100');
  t.equal(qemuNumberText(new JsonNumber('1.0', false)), '1');
  t.equal(qemuNumberText(new JsonNumber('-0.0', false)), '-0');
  t.equal(qemuNumberText(new JsonNumber('1e400', false)), 'inf');
});
