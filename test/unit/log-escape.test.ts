import t from 'tap';
import { createLogger } from '../../src/log.ts';
import { escapeUnsafe } from '../../src/util/unsafe-text.ts';

/** What clients and QEMU choose never reaches the operator's terminal as a command, and never splits a line. */

const at = () => new Date('2026-11-21T12:00:00.000Z');
const HOSTILE = '\u001b]0;PWNED\u0007\u001b[2J\u001b[31mFAKE';
/** A character no log line may hold raw. */
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

t.test('escapeUnsafe: C0, DEL, C1, line separators and reordering marks become JSON escapes; the rest stays', async (t) => {
  t.equal(escapeUnsafe(HOSTILE), '\\u001B]0;PWNED\\u0007\\u001B[2J\\u001B[31mFAKE');
  t.equal(escapeUnsafe('a\nb\rc\td'), 'a\\nb\\rc\\td');
  t.equal(escapeUnsafe('\u007f\u0080\u009b\u009f\u00a0'), '\\u007F\\u0080\\u009B\\u009F\u00a0', 'DEL and C1; no-break space is printable');
  t.equal(escapeUnsafe('\u2028\u2029\u202e\u2066'), '\\u2028\\u2029\\u202E\\u2066');
  t.equal(escapeUnsafe('é ünïcödé "quoted" back\\slash'), 'é ünïcödé "quoted" back\\slash');
  t.equal(escapeUnsafe(''), '');
});

t.test('text lines: fields, the message and trace tails are one line with nothing raw', async (t) => {
  const lines: string[] = [];
  const log = createLogger({ level: 'debug', format: 'text', trace: true, sink: (l) => lines.push(l), now: at });
  log.warn('refused a command', { endpoint: 'ep0', client: 'local#1', command: HOSTILE });
  log.warn('refused a command', { command: 'a\u009bb' });
  log.warn('refused a command', { command: 'x\u007f' });
  log.warn('refused a command', { command: 'back\\slash' });
  log.info(`QEMU sent ${HOSTILE}`);
  log.trace('from-client', { endpoint: 'ep0', client: 'local#1' }, '(unreadable input: JSON parse error, stray \'"ab\ncd\')');
  log.trace('to-client', { endpoint: 'ep0' }, Buffer.from('{"return": {}, "id": "\u009b2J"}\r\n'));
  t.same(lines, [
    '2026-11-21T12:00:00.000Z WARN  refused a command endpoint=ep0 client=local#1 command="\\u001B]0;PWNED\\u0007\\u001B[2J\\u001B[31mFAKE"',
    '2026-11-21T12:00:00.000Z WARN  refused a command command="a\\u009Bb"',
    '2026-11-21T12:00:00.000Z WARN  refused a command command="x\\u007F"',
    '2026-11-21T12:00:00.000Z WARN  refused a command command="back\\\\slash"',
    '2026-11-21T12:00:00.000Z INFO  QEMU sent \\u001B]0;PWNED\\u0007\\u001B[2J\\u001B[31mFAKE',
    '2026-11-21T12:00:00.000Z TRACE from-client endpoint=ep0 client=local#1 (unreadable input: JSON parse error, stray \'"ab\\ncd\')',
    '2026-11-21T12:00:00.000Z TRACE to-client endpoint=ep0 {"return": {}, "id": "\\u009B2J"}',
  ]);
  t.notOk(lines.some((l) => UNSAFE.test(l)));
});

t.test('JSON lines: valid JSON, the same values, nothing raw', async (t) => {
  const lines: string[] = [];
  const log = createLogger({ level: 'debug', format: 'json', trace: true, sink: (l) => lines.push(l), now: at });
  log.warn(`m${HOSTILE}`, { command: `${HOSTILE}\u009b\u007f\u2028` });
  log.trace('to-client', {}, `{"id": "\u009b\u202e"}`);
  t.notOk(lines.some((l) => UNSAFE.test(l)));
  t.same(lines.map((l) => JSON.parse(l) as unknown), [
    { time: '2026-11-21T12:00:00.000Z', level: 'warn', msg: `m${HOSTILE}`, command: `${HOSTILE}\u009b\u007f\u2028` },
    { time: '2026-11-21T12:00:00.000Z', level: 'trace', msg: 'to-client', message: '{"id": "\u009b\u202e"}' },
  ]);
});
