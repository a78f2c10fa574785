import t from 'tap';
import { count, milliseconds, parseOptions } from '../../../src/client/cli-options.ts';

const SPECS = {
  connect: { names: ['--connect'], value: true },
  pretty: { names: ['-p', '--pretty'], value: false },
  verbose: { names: ['-v'], value: false },
  wait: { names: ['-w', '--wait'], value: true },
} as const;

t.test('options anywhere, values both ways, combined short flags, -- ends options', async (t) => {
  const r = parseOptions(['device_del', '--connect', 'unix:a', 'id=x', '--wait=EV', '-pv', '--', '--not-an-option', '-'], SPECS);
  t.same(r.positional, ['device_del', 'id=x', '--not-an-option', '-']);
  t.same(r.values, { connect: 'unix:a', wait: 'EV' });
  t.same([...r.flags].sort(), ['pretty', 'verbose']);
  t.same(parseOptions(['-', 'x=-1'], SPECS).positional, ['-', 'x=-1'], 'a lone - and values starting with - are positional');
  t.same(parseOptions(['--connect', 'a', '--connect', 'b'], SPECS).values, { connect: 'b' }, 'the last value wins');
  t.same(parseOptions(['-w', 'X'], SPECS).values, { wait: 'X' });
  t.same([...parseOptions(['--pretty'], SPECS).flags], ['pretty']);
});

t.test('usage errors name the argument', async (t) => {
  const cases: [string[], string][] = [
    [['--bogus'], "unknown option '--bogus'"],
    [['-x'], "unknown option '-x'"],
    [['-pw'], "unknown option '-pw'"],
    [['--connect'], '--connect needs a value'],
    [['--pretty=yes'], '--pretty takes no value'],
  ];
  for (const [argv, message] of cases) t.throws(() => parseOptions(argv, SPECS), { name: 'UsageError', code: 'QMPMUX_USAGE', message }, argv.join(' '));
});

t.test('numbers', async (t) => {
  t.equal(milliseconds('0', '--timeout'), 0);
  t.equal(milliseconds('1500', '--timeout'), 1500);
  t.equal(milliseconds('2147483647', '--timeout'), 2147483647, 'the longest a timer waits');
  t.throws(() => milliseconds('2147483648', '--timeout'), { message: "--timeout: at most 2147483647 ms (about 24.8 days), got '2147483648'" }, 'longer overflows the timer');
  for (const bad of ['', '-1', '1.5', '1e3', 'soon', '99999999999999999999']) {
    t.throws(() => milliseconds(bad, '--timeout'), { message: `--timeout: expected a number of milliseconds, got '${bad}'` }, bad);
  }
  t.equal(count('3', '--count'), 3);
  for (const bad of ['0', '-2', 'x']) t.throws(() => count(bad, '--count'), { message: `--count: expected a whole number of at least 1, got '${bad}'` }, bad);
});
