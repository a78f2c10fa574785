import t, { type Test } from 'tap';
import { runEvents } from '../../src/client/events.ts';
import { runExec } from '../../src/client/exec.ts';
import { runShell } from '../../src/client/shell.ts';
import { fakeIo, type FakeIo } from '../fixtures/cli-io.ts';
import { eventually } from '../fixtures/context.ts';
import { FakeQemu, replyTo, type Responder } from '../fixtures/fake-qemu.ts';

/**
 * A hostile QMP server puts terminal escapes (ESC, BEL, DEL, C1's CSI) in
 * its greeting, replies, errors, events and command names: exec, events
 * and shell print none of them raw, in any output form, and what they
 * print as JSON is still the server's values.
 */

/** Retitles and clears a terminal, then paints in red; as JSON escapes. */
const ESCAPES = '\\u001b]0;PWNED\\u0007\\u001b[2J\\u001b[31mFAKE';
/** DEL and C1 CSI raw (JSON allows them raw; QEMU never sends them so). */
const RAW = 'x\u007f\u009b2Jy';
const HOSTILE = `${ESCAPES}${RAW}`;
/** The same string, decoded. */
const DECODED = `\u001b]0;PWNED\u0007\u001b[2J\u001b[31mFAKE${RAW}`;
const UNSAFE = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/;

const respond: Responder = (cmd, raw) => {
  switch (cmd.execute) {
    case 'query-name':
      return replyTo(raw, { return: `{"name": "${HOSTILE}"}` });
    case 'query-commands':
      return replyTo(raw, { return: `[{"name": "query-name"}, {"name": "quer${ESCAPES}y"}]` });
    case 'human-monitor-command':
      return replyTo(raw, { return: `"line one ${HOSTILE}\\r\\nline two\\r\\n"` });
    default:
      return replyTo(raw, { error: `{"class": "GenericError", "desc": "no ${HOSTILE}"}` });
  }
};

async function hostile(t: Test): Promise<FakeQemu> {
  return FakeQemu.start(t, {
    greeting: `{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "${HOSTILE}"}, "capabilities": []}}`,
    respond,
  });
}

function clean(t: Test, io: FakeIo, what: string): void {
  t.notOk(UNSAFE.test(io.out()), `${what}: nothing raw on stdout`);
  t.notOk(UNSAFE.test(io.err()), `${what}: nothing raw on stderr`);
}

t.test('exec: the value, compact and pretty, and errors', async (t) => {
  const fake = await hostile(t);
  for (const flag of ['--compact', '--pretty']) {
    const io = fakeIo();
    t.equal(await runExec(['--connect', fake.path, flag, 'query-name'], io), 0);
    clean(t, io, `exec ${flag}`);
    t.same(JSON.parse(io.out()), { name: DECODED }, `${flag}: still the server's value, as JSON escapes`);
  }
  const io = fakeIo();
  t.equal(await runExec(['--connect', fake.path, 'stop'], io), 1);
  clean(t, io, 'exec error');
  t.equal(io.err(), 'qmp-mux exec: stop: GenericError: no \\u001B]0;PWNED\\u0007\\u001B[2J\\u001B[31mFAKEx\\u007F\\u009B2Jy\n');
  const lines = fakeIo({ input: 'query-name\nstop\n' });
  t.equal(await runExec(['--connect', fake.path, '-k'], lines), 1);
  clean(t, lines, 'exec from stdin');
});

t.test('exec: a greeting that is not one, shown in the error', async (t) => {
  const fake = await FakeQemu.start(t, { greeting: `{"hello": "${HOSTILE}"}` });
  const io = fakeIo();
  t.equal(await runExec(['--connect', fake.path, 'query-name'], io), 3);
  clean(t, io, 'exec protocol error');
  t.match(io.err(), /expected a QMP greeting, got .*\\u001B\]0;PWNED/i);
});

t.test('events: each event, compact and pretty', async (t) => {
  const fake = await hostile(t);
  for (const flag of [[], ['-p']]) {
    const io = fakeIo();
    const running = runEvents(['--connect', fake.path, '--count', '2', ...flag], io);
    // Emitted once the client has negotiated (an event before is not for it): the fake has answered, and the event follows that answer.
    await fake.until(() => fake.connections.length > 0 && fake.received.length > 0 && fake.received.at(-1)!.includes('qmp_capabilities'));
    fake.emit(`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "E${HOSTILE}", "data": {"${HOSTILE}": "${HOSTILE}"}}\r\n`);
    fake.emit(`{"timestamp": {"seconds": 1, "microseconds": 3}, "event": "SHUTDOWN"}\r\n`);
    t.equal(await running, 0);
    clean(t, io, `events ${flag.join(' ')}`);
    t.match(io.out(), /\\u001B\]0;PWNED\\u0007/);
    fake.received.length = 0;
  }
});

t.test('shell, input not a terminal: greeting, values, errors, events, HMP text', async (t) => {
  const fake = await hostile(t);
  const io = fakeIo({ input: 'query-name\nstop\n' });
  const done = runShell(['--connect', fake.path, '--no-history', '-v'], io);
  t.equal(await done, 0);
  clean(t, io, 'shell');
  const lines = io.out().split('\n');
  t.equal(lines[0], `Connected to QEMU 7.2.0 (\\u001B]0;PWNED\\u0007\\u001B[2J\\u001B[31mFAKEx\\u007F\\u009B2Jy) at unix:${fake.path}`);
  t.ok(lines.includes('error: GenericError: no \\u001B]0;PWNED\\u0007\\u001B[2J\\u001B[31mFAKEx\\u007F\\u009B2Jy'));
  const hmp = fakeIo({ input: 'info name\n' });
  t.equal(await runShell(['--connect', fake.path, '--no-history', '-H'], hmp), 0);
  clean(t, hmp, 'shell -H');
  t.same(hmp.out().split('\n').slice(1), ['line one \\u001B]0;PWNED\\u0007\\u001B[2J\\u001B[31mFAKEx\\u007F\\u009B2Jy', 'line two', ''], 'HMP text keeps its lines');
});

t.test('shell, on a terminal: events above the prompt, and completion never offers a name with escapes', async (t) => {
  const fake = await hostile(t);
  const io = fakeIo({ tty: true });
  const done = runShell(['--connect', fake.path, '--no-history'], io);
  const until = async (pattern: RegExp): Promise<void> => {
    await eventually(() => pattern.test(io.out()), () => `${pattern} in the shell's output:\n${io.out()}`);
    t.match(io.out(), pattern);
  };
  await until(/\(QEMU\) /);
  // The first prompt may come before completion has learnt the commands: the reply to a command comes after theirs.
  const prompts = (): number => io.out().split('(QEMU) ').length;
  const before = prompts();
  io.stdin.write('query-name\n');
  await eventually(() => prompts() > before, () => `the reply to query-name, then the prompt:\n${io.out()}`);
  fake.emit(`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "E${HOSTILE}"}\r\n`);
  await until(/event E\\u001B/);
  // One key at a time, each written once the last one shows: readline takes several in one chunk for a paste, and
  // does not complete those. The first Tab completes the one name offered; a second would list them all.
  io.stdin.write('quer');
  await until(/quer$/);
  io.stdin.write('\t');
  await until(/query-name $/);
  const completed = io.out().length;
  io.stdin.write('\t');
  io.stdin.end();
  t.equal(await done, 0);
  t.notMatch(io.out().slice(completed), /quer\\u001b/i, 'the second Tab lists no other name');
  t.notOk(io.out().includes('\u001b]0;PWNED') || io.out().includes('\u009b') || io.out().includes('\u007f'), 'no escape sequence of the server reached the terminal');
});
