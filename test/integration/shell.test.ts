import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { QmpClient } from '../../src/client/qmp-client.ts';
import { runShell as shellCommand, SHELL_USAGE } from '../../src/client/shell.ts';
import { fakeIo, type FakeIo } from '../fixtures/cli-io.ts';
import { eventually, named, waitingFor } from '../fixtures/context.ts';
import { FakeQemu } from '../fixtures/fake-qemu.ts';
import { startMux } from '../fixtures/mux.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { socketDir } from '../fixtures/tmp.ts';

/**
 * The shell with input that is not a terminal (no prompts, no completion):
 * what it prints for each kind of line and option. The terminal itself is
 * tested in shell-terminal.test.ts.
 */

async function until(io: FakeIo, pattern: RegExp): Promise<void> {
  await eventually(() => pattern.test(io.out()), () => `${pattern} in the shell's output:\n${io.out()}`);
}

/** `qmp-mux shell ARGS` in this process (a named wait). */
const runShell = (args: string[], io: FakeIo): Promise<number> => waitingFor(`qmp-mux shell ${args.join(' ')} to end`, shellCommand(args, io));

t.test('replies, errors with their class, syntax errors, -v and -p, transactions; directly and through qmp-mux', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t, { monitors: 2 });
  const mux = await startMux(t, qemu.monitors[0]!);
  for (const [how, path] of [['direct', qemu.monitors[1]!], ['through qmp-mux', mux.path]] as const) {
    const home = socketDir(t);
    const io = fakeIo({ env: { HOME: home }, input: 'query-status\n\nquery-name x=1\nquery-name x\n{"execute": "query-name"}\ntransaction(\nabort\n)\nmigrate-set-parameters max-bandwidth=18446744073709551615\nquery-migrate-parameters\n' });
    t.equal(await runShell(['--connect', path], io), 0, `${how}: the end of input ends the shell`);
    const lines = io.out().split('\n');
    t.match(lines[0], /^Connected to QEMU 7\.2\.\d+ \(.*\) at unix:/);
    t.same(lines.slice(1, 6), [
      '{"status":"running","singlestep":false,"running":true}',
      "error: GenericError: Parameter 'x' is unexpected",
      "syntax error: expected KEY=VALUE, got 'x' (column 12)",
      '{}',
      'error: GenericError: Transaction aborted using Abort action',
    ], how);
    t.match(lines[7], /"max-bandwidth":18446744073709551615[,}]/, `${how}: large integers exactly`);
    t.equal(readFileSync(join(home, '.qmp-mux_history'), 'utf8').split('\n').length, 10, 'history under $HOME by default, one line per entry but the empty one');
  }
  const verbose = fakeIo({ input: 'query-name\nhuman-monitor-command command-line="info status"\n' });
  t.equal(await runShell(['--connect', mux.path, '-v', '-p', '--no-history'], verbose), 0);
  t.same(verbose.out().split('\n').slice(1), [
    '{',
    '  "execute": "query-name"',
    '}',
    '{}',
    '{',
    '  "execute": "human-monitor-command",',
    '  "arguments": {',
    '    "command-line": "info status"',
    '  }',
    '}',
    '"VM status: running\\r\\n"',
    '',
  ], '-v shows the JSON sent, -p indents');
});

t.test('-H: lines are HMP commands', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t);
  const io = fakeIo({ input: 'info status\n\ninfo name\nnot-a-command\n' });
  t.equal(await runShell(['--connect', qemu.monitors[0]!, '-H', '--no-history'], io), 0);
  t.same(io.out().split('\n').slice(1), ['VM status: running', '', "unknown command: 'not-a-command'", ''], 'HMP output as text; an empty reply prints an empty line');
});

t.test('events as they come; QEMU restarting behind qmp-mux; typing while disconnected', async (t) => {
  if (!needQemu(t)) return;
  const dir = socketDir(t);
  const first = await startQemu(t, { dir, names: ['qemu.sock'], args: ['-name', 'first'] });
  const mux = await startMux(t, first.monitors[0]!, { timeouts: { clientGreetingMs: 0 } });
  const io = fakeIo();
  const running = runShell(['--connect', mux.path, '--no-history'], io);
  await until(io, /^Connected/);
  const other = named('the other client', await waitingFor('the other client to connect', QmpClient.connect(mux.path)));
  await other.execute('stop');
  await other.execute('cont');
  await until(io, /^event STOP \d\d:\d\d:\d\d\.\d{6}\nevent RESUME /m);
  await other.close();
  await first.stop();
  await until(io, /^connection lost: unix:.*: the server closed the connection; reconnecting\.\.\.$/m);
  io.stdin.write('query-name\n');
  await until(io, /^not connected: waiting for unix:.* \(Ctrl-D quits\)$/m);
  await startQemu(t, { dir, names: ['qemu.sock'], args: ['-name', 'second'] });
  await until(io, /^reconnected: QEMU 7\.2\.\d+/m);
  io.stdin.write('query-name\n');
  await until(io, /^\{"name":"second"\}$/m);
  io.stdin.end();
  t.equal(await running, 0);
  t.equal(io.out().match(/connection lost/g)?.length, 1, 'quitting after the reconnect loses no connection');
});

t.test('quitting while a command runs, or while reconnecting', async (t) => {
  const stuck = await FakeQemu.start(t, { respond: () => undefined });
  const io = fakeIo();
  const running = runShell(['--connect', stuck.path, '--no-history'], io);
  await until(io, /^Connected/);
  io.stdin.write('never-answered\n');
  await stuck.until(() => stuck.received.some((r) => r.includes('never-answered')));
  io.stdin.end();
  await new Promise((r) => setTimeout(r, 50));
  t.equal(await Promise.race([running, new Promise((r) => setTimeout(() => r('still running'), 300))]), 'still running', 'the end of input waits for the command');
  await stuck.close();
  t.equal(await running, 0, 'which ends with the connection');
  t.match(io.out(), /^error: unix:.*: the server closed the connection( \(ECONNRESET\))?$/m);

  const fake = await FakeQemu.start(t);
  const away = fakeIo();
  const reconnecting = runShell(['--connect', fake.path, '--no-history'], away);
  await until(away, /^Connected/);
  await fake.close();
  await until(away, /reconnecting/);
  away.stdin.end();
  t.equal(await reconnecting, 0, 'the end of input stops reconnecting');
});

t.test('piped input that ends inside transaction( says so: its actions were not run', async (t) => {
  const fake = await FakeQemu.start(t);
  const io = fakeIo({ input: 'transaction(\nabort\n' });
  t.equal(await runShell(['--connect', fake.path, '--no-history'], io), 0, 'errors are in the output, as for a line that does not parse');
  t.same(io.out().split('\n').slice(1), ['syntax error: transaction( was not closed with ) before the end of input', '']);
  t.notOk(fake.received.some((r) => r.includes('transaction')), 'nothing sent');
});

t.test('history file problems are said once, and the shell goes on', async (t) => {
  const fake = await FakeQemu.start(t);
  const dir = socketDir(t);
  mkdirSync(join(dir, 'a-directory'));
  const io = fakeIo({ input: 'query-name\n' });
  t.equal(await runShell(['--connect', fake.path, '--history', join(dir, 'a-directory')], io), 0);
  t.match(io.err(), new RegExp(`^qmp-mux shell: history ${join(dir, 'a-directory')}: EISDIR.*; not saving history\\n$`));
  t.match(io.out(), /\n\{\}\n$/);
  const missing = fakeIo({ input: 'query-name\nquery-name\n' });
  t.equal(await runShell(['--connect', fake.path, '--history', join(dir, 'no', 'such', 'dir')], missing), 0);
  t.equal(missing.err().split('\n').length, 2, 'one line for several failed writes');
  t.match(missing.err(), /ENOENT/);
});

t.test('usage, help, connection failures', async (t) => {
  for (const [args, message] of [[['--nope'], "unknown option '--nope'"], [['a.sock', 'extra'], "unexpected argument 'extra'"], [['--history-size', '0'], "--history-size: expected a whole number of at least 1, got '0'"]] as const) {
    const io = fakeIo();
    t.equal(await runShell([...args], io), 2);
    t.equal(io.err(), `qmp-mux shell: ${message}\ntry 'qmp-mux shell --help'\n`);
  }
  const help = fakeIo();
  t.equal(await runShell(['--help'], help), 0);
  t.equal(help.out(), SHELL_USAGE);
  const dir = socketDir(t);
  const none = fakeIo();
  t.equal(await runShell(['--connect', join(dir, 'none.sock')], none), 3);
  t.equal(none.err(), `qmp-mux shell: unix:${join(dir, 'none.sock')}: no such socket (ENOENT)\n`);
  const env = fakeIo({ env: { QMP_SOCKET: join(dir, 'env.sock') } });
  t.equal(await runShell([], env), 3, '$QMP_SOCKET');
  t.match(env.err(), /env\.sock: no such socket/);
});
