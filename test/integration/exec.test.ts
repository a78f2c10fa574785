import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { EXEC_USAGE, runExec } from '../../src/client/exec.ts';
import { runCli } from '../fixtures/cli.ts';
import { fakeIo } from '../fixtures/cli-io.ts';
import { waitingFor } from '../fixtures/context.ts';
import { FakeQemu } from '../fixtures/fake-qemu.ts';
import { startMux } from '../fixtures/mux.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { socketDir } from '../fixtures/tmp.ts';

/** One QEMU with two monitors: one behind a qmp-mux in this process, one used directly. */
async function routes(t: Test): Promise<{ how: string; address: string }[]> {
  const qemu = await startQemu(t, { monitors: 2 });
  const mux = await startMux(t, qemu.monitors[0]!);
  return [
    { how: 'direct', address: `unix:${qemu.monitors[1]!}` },
    { how: 'through qmp-mux', address: `unix:${mux.path}` },
  ];
}

/** Runs `qmp-mux exec` in this process. */
async function exec(args: string[], options: Parameters<typeof fakeIo>[0] = {}): Promise<{ status: number; out: string; err: string }> {
  const io = fakeIo(options);
  const status = await waitingFor(`qmp-mux exec ${args.join(' ')} to end`, runExec(args, io));
  return { status, out: io.out(), err: io.err() };
}

t.test('one command: its return value, its error, large integers, --wait-event; directly and through qmp-mux', async (t) => {
  if (!needQemu(t)) return;
  for (const { how, address } of await routes(t)) {
    const c = ['--connect', address];
    t.same(await exec([...c, 'query-status']), { status: 0, out: '{"status":"running","singlestep":false,"running":true}\n', err: '' }, `${how}: one compact line`);
    t.same(await exec([...c, 'query-status'], { tty: true }), { status: 0, out: '{\n  "status": "running",\n  "singlestep": false,\n  "running": true\n}\n', err: '' }, `${how}: indented on a terminal`);
    t.equal((await exec([...c, '-p', 'query-name'])).out, '{}\n');
    t.equal((await exec([...c, '--compact', 'query-status'], { tty: true })).out, '{"status":"running","singlestep":false,"running":true}\n');
    t.same(await exec([...c, 'no-such-command']), { status: 1, out: '', err: 'qmp-mux exec: no-such-command: CommandNotFound: The command no-such-command has not been found\n' }, `${how}: a QMP error`);
    t.same(await exec([...c, 'query-name', 'x=1']), { status: 1, out: '', err: "qmp-mux exec: query-name: GenericError: Parameter 'x' is unexpected\n" });
    t.same(await exec([...c, '{"execute": "query-name"}']), { status: 0, out: '{}\n', err: '' }, `${how}: a JSON command`);

    t.same(await exec([...c, 'migrate-set-parameters', 'max-bandwidth=18446744073709551615']), { status: 0, out: '{}\n', err: '' });
    t.match((await exec([...c, 'query-migrate-parameters'])).out, /"max-bandwidth":18446744073709551615[,}]/, `${how}: uint64 max printed exactly`);
    t.match((await exec([...c, 'query-migrate-parameters'], { tty: true })).out, /"max-bandwidth": 18446744073709551615,?\n/, 'indented too');
    await exec([...c, 'migrate-set-parameters', 'max-bandwidth=134217728']);

    const stop = await exec([...c, 'stop', '--wait-event', 'STOP,SHUTDOWN']);
    t.equal(stop.status, 0);
    t.match(stop.out, /^\{\}\n\{"timestamp":\{"seconds":\d+,"microseconds":\d+\},"event":"STOP"\}\n$/, `${how}: STOP, which QEMU sends before the reply, is caught`);
    const cont = await exec([...c, '--wait-event=RESUME', 'cont'], { tty: true });
    t.match(cont.out, /^\{\}\n\{\n  "timestamp": \{\n.*\n  "event": "RESUME"\n\}\n$/s);
    t.same(await exec([...c, 'query-status', '--wait-event', 'DEVICE_DELETED', '--timeout', '200']), { status: 4, out: '{"status":"running","singlestep":false,"running":true}\n', err: 'qmp-mux exec: timed out after 200 ms\n' }, `${how}: an event that does not come`);
    t.same(await exec([...c, 'no-such-command', '--wait-event', 'STOP']), { status: 1, out: '', err: 'qmp-mux exec: no-such-command: CommandNotFound: The command no-such-command has not been found\n' }, 'a failed command waits for nothing');
  }
});

t.test('commands on stdin: in order, stopping at the first failure unless -k', async (t) => {
  if (!needQemu(t)) return;
  for (const { how, address } of await routes(t)) {
    const c = ['--connect', address];
    t.same(await exec(c, { input: 'query-name\n# a comment\n\n  query-status  \r\n{"execute": "query-name"}' }), { status: 0, out: '{}\n{"status":"running","singlestep":false,"running":true}\n{}\n', err: '' }, `${how}: each answered in order`);
    t.same(await exec(c, { input: 'query-name\nbogus\nquery-name\n' }), { status: 1, out: '{}\n', err: 'qmp-mux exec: bogus: CommandNotFound: The command bogus has not been found\n' }, `${how}: stops at the first error`);
    t.same(await exec([...c, '-k'], { input: 'bogus\nquery-name\nquery-name x=\n' }), { status: 1, out: '{}\n', err: "qmp-mux exec: bogus: CommandNotFound: The command bogus has not been found\nqmp-mux exec: query-name: GenericError: Parameter 'x' is unexpected\n" }, `${how}: -k goes on; the status is the first failure's`);
    t.same(await exec(c, { input: 'query-name\nquery-name x\nquery-name\n' }), { status: 2, out: '{}\n', err: "qmp-mux exec: line 2: expected KEY=VALUE, got 'x' (column 12)\n" }, 'a line that does not parse');
    t.same(await exec([...c, '--keep-going'], { input: 'query-name x\nquery-name\n' }), { status: 2, out: '{}\n', err: "qmp-mux exec: line 1: expected KEY=VALUE, got 'x' (column 12)\n" });
    t.same(await exec(c, { input: 'transaction(\nabort\n)\n' }), { status: 1, out: '', err: 'qmp-mux exec: transaction: GenericError: Transaction aborted using Abort action\n' }, 'transactions span lines');
    t.same(await exec(c, { input: 'transaction(\nabort\n' }), { status: 2, out: '', err: 'qmp-mux exec: line 2: transaction( was not closed with )\n' });
    t.same(await exec(c, { input: '' }), { status: 0, out: '', err: '' }, 'no commands at all');
  }
});

t.test('usage errors: one line, a pointer to --help, status 2', async (t) => {
  const cases: [string[], string][] = [
    [['--bogus'], "unknown option '--bogus'"],
    [['--connect'], '--connect needs a value'],
    [['--connect', 'udp:x', 'query-status'], "'udp:x': expected unix:PATH, tcp:HOST:PORT, tls:HOST:PORT, HOST:PORT or a socket path (./udp:x for a file of that name)"],
    [['--timeout', 'soon', 'x'], "--timeout: expected a number of milliseconds, got 'soon'"],
    [['--wait-event', 'STOP'], '--wait-event needs a COMMAND (not commands on stdin)'],
    [['--wait-event', ',', 'stop'], '--wait-event needs an event name'],
    [['-p', '--compact', 'x'], 'give either --pretty or --compact'],
    [['query-name', 'x'], "expected KEY=VALUE, got 'x' (argument 2)"],
    [['{"execute": 1}'], 'JSON command: "execute" must be a string (the command name)'],
  ];
  for (const [args, message] of cases) {
    t.same(await exec(args), { status: 2, out: '', err: `qmp-mux exec: ${message}\ntry 'qmp-mux exec --help'\n` }, args.join(' '));
  }
  t.same(await exec(['--help']), { status: 0, out: EXEC_USAGE, err: '' });
  t.match(EXEC_USAGE, /Exit status: 0 done; 1 .*2 .*3 .*4 timed out/s);
});

t.test('connection problems: status 3, or 4 for a greeting that does not come', async (t) => {
  const dir = socketDir(t);
  t.same(await exec(['--connect', join(dir, 'none.sock'), 'query-status']), { status: 3, out: '', err: `qmp-mux exec: unix:${join(dir, 'none.sock')}: no such socket (ENOENT)\n` }, 'a bare path is a unix socket');
  t.same(await exec(['query-status'], { env: { QMP_SOCKET: `unix:${join(dir, 'env.sock')}` } }), { status: 3, out: '', err: `qmp-mux exec: unix:${join(dir, 'env.sock')}: no such socket (ENOENT)\n` }, '$QMP_SOCKET');
  t.same(await exec(['query-status'], { env: { QMP_SOCKET: '' } }), { status: 3, out: '', err: 'qmp-mux exec: unix:qmp-mux.sock: no such socket (ENOENT)\n' }, "qmp-mux's default endpoint");
  writeFileSync(join(dir, 'plain'), '');
  t.same(await exec(['--connect', join(dir, 'plain'), 'query-status']), { status: 3, out: '', err: `qmp-mux exec: unix:${join(dir, 'plain')}: not a socket (a regular file) (ECONNREFUSED)\n` }, 'a file that is not a socket');
  const silent = await FakeQemu.start(t, { greeting: ' ' });
  t.same(await exec(['--connect', silent.path, '--timeout', '150', 'query-status']), { status: 4, out: '', err: 'qmp-mux exec: timed out after 150 ms\n' });
  const stuck = await FakeQemu.start(t, { respond: () => undefined });
  t.same(await exec(['--connect', stuck.path, '--timeout', '150'], { input: 'query-status\n' }), { status: 4, out: '', err: 'qmp-mux exec: timed out after 150 ms\n' }, 'a command that never returns');
  const waiting = fakeIo();
  const stdinOpen = runExec(['--connect', stuck.path, '--timeout', '150'], waiting);
  t.equal(await stdinOpen, 4, 'stdin that never ends is timed out too');
  t.equal(waiting.err(), 'qmp-mux exec: timed out after 150 ms\n');
});

t.test('QEMU going away mid-run', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t);
  const r = await exec(['--connect', qemu.monitors[0]!], { input: 'query-name\nquit\nquery-name\n' });
  t.equal(r.status, 3);
  t.equal(r.out, '{}\n{}\n', 'quit returns before the connection ends');
  t.match(r.err, /^qmp-mux exec: unix:.*: the server closed the connection( \((EPIPE|ECONNRESET)\))?\n$/, 'whether the end or a failed write is noticed first');
  const fake = await FakeQemu.start(t, { respond: (_cmd, _raw, conn) => (conn.close(), undefined) });
  t.same(await exec(['--connect', fake.path, 'stop', '--wait-event', 'STOP']), { status: 3, out: '', err: `qmp-mux exec: unix:${fake.path}: the server closed the connection\n` }, 'closed before the reply');
  const quiet = await FakeQemu.start(t);
  const ending = exec(['--connect', quiet.path, 'stop', '--wait-event', 'STOP']);
  await quiet.until(() => quiet.received.length === 2);
  quiet.connections[0]!.close();
  t.same(await ending, { status: 3, out: '{}\n', err: `qmp-mux exec: unix:${quiet.path}: the server closed the connection\n` }, 'closed while waiting for the event');
});

t.test('the real command: exit statuses, stdin, $QMP_SOCKET, large output to a pipe, a reader that leaves', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t, { monitors: 2 });
  const mux = await startMux(t, qemu.monitors[0]!);
  const env = { ...process.env, QMP_SOCKET: `unix:${mux.path}` };
  const ok = runCli(t, ['exec', 'query-status'], { env });
  t.same(await ok.exited, { code: 0, signal: null });
  t.equal(ok.stdout(), '{"status":"running","singlestep":false,"running":true}\n');
  const failed = runCli(t, ['exec', 'nope'], { env });
  t.same(await failed.exited, { code: 1, signal: null });
  t.equal(failed.stderr(), 'qmp-mux exec: nope: CommandNotFound: The command nope has not been found\n');
  const usage = runCli(t, ['exec', '--nope'], { env });
  t.same(await usage.exited, { code: 2, signal: null });
  const unreachable = runCli(t, ['exec', '--connect', 'unix:/nonexistent/x.sock', 'query-status'], { env });
  t.same(await unreachable.exited, { code: 3, signal: null });
  const lines = runCli(t, ['exec', '--connect', qemu.monitors[1]!], { env, input: 'migrate-set-parameters max-bandwidth=18446744073709551615\nquery-migrate-parameters\n' });
  t.same(await lines.exited, { code: 0, signal: null });
  t.match(lines.stdout(), /^\{\}\n\{.*"max-bandwidth":18446744073709551615[,}].*\}\n$/, 'stdin mode, directly against QEMU');
  const schema = runCli(t, ['exec', 'query-qmp-schema'], { env });
  t.same(await schema.exited, { code: 0, signal: null });
  t.ok((JSON.parse(schema.stdout()) as unknown[]).length > 500, `all ${schema.stdout().length} bytes arrive before the process exits`);
  const leaving = runCli(t, ['exec', 'query-qmp-schema'], { env });
  leaving.child.stdout!.once('data', () => leaving.child.stdout!.destroy());
  t.same(await leaving.exited, { code: 0, signal: null }, 'a reader that goes away ends the output quietly');
  t.equal(leaving.stderr(), '');
});
