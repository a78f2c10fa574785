import t from 'tap';
import { startMux } from '../../src/mux/start.ts';
import { FakeQemu } from '../fixtures/fake-qemu.ts';
import { TestClient } from '../fixtures/qmp-client.ts';
import { socketDir } from '../fixtures/tmp.ts';

/**
 * A client and a QEMU that put terminal escapes and line breaks in what
 * qmp-mux logs: every log line stays one line with no control character,
 * in text and in JSON. Real sockets, a whole qmp-mux with --trace.
 */

const HOSTILE = '\\u001b]0;PWNED\\u0007\\u001b[2J\\u001b[31mFAKE';
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

for (const format of ['text', 'json'] as const) {
  t.test(`${format} log: refused names, ids, unreadable input and QEMU's text, one line each, nothing raw`, async (t) => {
    const dir = socketDir(t);
    const fake = await FakeQemu.start(t, {
      greeting: `{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "${HOSTILE}"}, "capabilities": []}}`,
    });
    const lines: string[] = [];
    const mux = await startMux(
      { upstream: { connect: `unix:${fake.path}` }, endpoints: [{ name: 'ro', listen: `unix:${dir}/ro.sock`, policy: { allow: ['query-*'] } }] },
      { log: { level: 'debug', format, trace: true, sink: (l) => lines.push(l) } },
    );
    t.teardown(() => mux.stop());
    const c = await TestClient.connect(`${dir}/ro.sock`);
    await c.negotiate();
    const sent = [
      `{"execute":"${HOSTILE}","id":1}`,
      '{"execute":"a\u009b2Jb\u007f","id":2}',
      '{"execute":"query-status","id":"ab\\ncd"}',
      '{"execute":"query-status","id":"ab\ncd"}',
    ];
    for (const input of sent) {
      c.send(Buffer.from(input, 'utf8'));
      await c.next();
    }
    fake.emit(`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "X${HOSTILE}"}\r\n{"weird": "${HOSTILE}\\n"}\r\n`);
    await c.next();
    await fake.until(() => lines.some((l) => l.includes('unexpected message from QEMU')));
    await mux.stop();
    const raw = lines.filter((l) => UNSAFE.test(l));
    t.same(raw, [], 'no line holds a control character');
    const joined = lines.join('\n');
    t.notOk(joined.includes('\u001b') || joined.includes('\u009b') || joined.includes('\u007f'));
    const refused = lines.filter((l) => l.includes('refused a command'));
    t.equal(refused.length, 2, 'each refusal is one line');
    t.match(refused[0], format === 'text' ? /command="\\u001B\]0;PWNED\\u0007\\u001B\[2J\\u001B\[31mFAKE" why=command$/ : /"command":"\\u001b\]0;PWNED\\u0007\\u001b\[2J\\u001b\[31mFAKE"/);
    t.match(joined, /QEMU connected/);
    if (format === 'json') for (const l of lines) t.doesNotThrow(() => JSON.parse(l), 'valid JSON');
    const traced = lines.filter((l) => /TRACE|"level":"trace"/.test(l));
    // The negotiation, three commands, and the two errors the raw line break makes (as QEMU makes them).
    t.equal(traced.filter((l) => l.includes('from-client')).length, 6, 'one trace line per message read from the client');
    const unreadable = format === 'text' ? traced : traced.map((l) => (JSON.parse(l) as { message: string }).message);
    const shown = format === 'text' ? `stray '"ab\\n'` : `stray '"ab\n'`;
    t.ok(unreadable.some((l) => l.includes(`unreadable input: JSON parse error, ${shown}`)), 'the raw line break is shown escaped');
  });
}
