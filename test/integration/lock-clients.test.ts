import t from 'tap';
import { runExec } from '../../src/client/exec.ts';
import { QmpClient } from '../../src/client/qmp-client.ts';
import { QmpError } from '../../src/errors.ts';
import { MAIN } from '../fixtures/cli.ts';
import { fakeIo } from '../fixtures/cli-io.ts';
import { eventually } from '../fixtures/context.ts';
import { duringLock, lockBench } from '../fixtures/locking.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { socketDir } from '../fixtures/tmp.ts';
import { needTmux, Terminal } from '../fixtures/tmux.ts';

/** The clients and the lock: `exec --lock`, the library's `withLock`, the shell's lock words and its prompt. */

async function exec(args: string[], io = fakeIo()): Promise<{ status: number; out: string; err: string }> {
  const status = await runExec(args, io);
  return { status, out: io.out(), err: io.err() };
}

/** What `promise` rejects with (it must). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => new Error('resolved'),
    (e: unknown) => e,
  );
}

/** The lock as a client that never takes one sees it. */
const lockNow = async (c: QmpClient): Promise<unknown> => c.execute('__org.qmp-mux_query-lock');

t.test('exec --lock: several commands under one lock, released at the end; refused, waiting, failing', async (t) => {
  if (!needQemu(t)) return;
  const { mux, audit, settled } = await lockBench(t);
  const address = `unix:${mux.path}`;
  const c = ['--connect', address];
  const watcher = await QmpClient.connect(address);
  t.teardown(() => watcher.close());

  const run = await exec([...c, '--lock', 'write', '--lock-reason', 'maintenance', 'stop', ';', 'query-status', ';', 'cont']);
  t.same(run, { status: 0, out: '{}\n{"status":"paused","singlestep":false,"running":false}\n{}\n', err: '' });
  await settled();
  const lock = audit().find((l) => l.type === 'lock')!;
  const { granted, ended, during } = duringLock(audit(), lock.client as number);
  t.match(granted, { reason: 'maintenance', mode: 'write' });
  t.match(ended, { why: 'unlock' }, 'released by its unlock');
  t.same(during.filter((l) => l.command !== undefined).map((l) => l.command), ['__org.qmp-mux_lock', 'stop', 'query-status', 'cont'], 'all three inside it');

  const failing = await exec([...c, '--lock', 'exclusive', 'query-name', ';', 'nope', ';', 'query-name']);
  t.same(failing, { status: 1, out: '{}\n', err: 'qmp-mux exec: nope: CommandNotFound: The command nope has not been found\n' });
  t.same(await lockNow(watcher), {}, 'released after a failure too');
  await settled();
  t.equal(audit().filter((l) => l.type === 'lock' && l.action === 'ended').at(-1)!.why, 'unlock');

  await watcher.lock('write', { reason: 'backup' });
  const refused = await exec([...c, '--lock', 'write', 'query-status']);
  t.equal(refused.status, 1);
  t.match(refused.err, /^qmp-mux exec: __org\.qmp-mux_lock: GenericError: Cannot take a write lock: client \d+ on endpoint 'tools' has held a write lock since \S+ \(reason: backup\)\n$/);
  const waiting = exec([...c, '--lock', 'write', '--lock-wait', '60000', 'query-name']);
  await eventually(() => mux.mux.describe().lock?.waiting.length === 1, 'exec in line for the lock');
  await watcher.unlock();
  t.same(await waiting, { status: 0, out: '{}\n', err: '' }, 'it waited, then ran');

  const io = fakeIo();
  const lapsing = exec([...c, '--lock', 'write', '--lock-lease', '200'], io);
  io.stdin.write('query-name\n');
  await eventually(() => io.out() === '{}\n', 'the first command run');
  await eventually(async () => JSON.stringify(await lockNow(watcher)) === '{}', 'the lease to run out while exec waits for input');
  io.stdin.end('query-name\n');
  t.match(await lapsing, {
    status: 1,
    out: '{}\n{}\n',
    err: /^qmp-mux exec: __org\.qmp-mux_unlock: GenericError: This client holds no lock: its write lock ended at \S+, when its lease of 200 ms ran out\n$/,
  }, 'a lock that ended before its unlock is a failure');
});

t.test('exec --lock: usage errors, and a server that is not qmp-mux', async (t) => {
  const usage: [string[], string][] = [
    [['--lock-wait', '5', 'query-name'], '--lock-wait needs --lock'],
    [['--lock-reason', 'x', 'query-name'], '--lock-reason needs --lock'],
    [['--lock', 'read', 'query-name'], "--lock: expected write or exclusive, got 'read'"],
    [['--lock', 'write', '--lock-lease', 'soon', 'query-name'], "--lock-lease: expected a number of milliseconds, got 'soon'"],
    [['query-name', ';'], "';' must stand between two commands"],
    [[';', 'query-name'], "';' must stand between two commands"],
    [['query-name', ';', 'query-name', 'x'], "command 2: expected KEY=VALUE, got 'x' (argument 2)"],
  ];
  for (const [args, message] of usage) {
    t.same(await exec(args), { status: 2, out: '', err: `qmp-mux exec: ${message}\ntry 'qmp-mux exec --help'\n` }, message);
  }
  if (!needQemu(t)) return;
  const qemu = await startQemu(t);
  const direct = await exec(['--connect', `unix:${qemu.monitors[0]}`, '--lock', 'write', 'query-name']);
  t.same(direct, { status: 1, out: '', err: 'qmp-mux exec: __org.qmp-mux_lock: CommandNotFound: The command __org.qmp-mux_lock has not been found\n' }, 'nothing run without the lock');
});

t.test('withLock runs a function under the lock and releases it whatever happens', async (t) => {
  if (!needQemu(t)) return;
  const { mux, audit } = await lockBench(t);
  const tool = await QmpClient.connect(`unix:${mux.path}`);
  const other = await QmpClient.connect(`unix:${mux.path}`);
  t.teardown(async () => {
    await tool.close();
    await other.close();
  });
  let stopped: Promise<unknown> | undefined;
  const status = await tool.withLock(
    'write',
    async (qmp) => {
      stopped = other.execute('stop');
      await eventually(() => mux.mux.describe().lock?.waitingCommands === 1, "the other client's stop waiting");
      return qmp.execute('query-status');
    },
    { reason: 'library' },
  );
  t.match(status, { running: true }, "its value: the other client's stop had not run");
  await stopped;
  t.match(await tool.execute('query-status'), { running: false }, 'it ran once the lock was released');
  await tool.execute('cont');

  const failure = new Error('the job failed');
  await t.rejects(tool.withLock('exclusive', () => Promise.reject(failure)), failure, "fn's own error");
  t.same(await lockNow(other), {}, 'released');
  const lapsed = await rejection(tool.withLock('write', () => eventually(() => mux.mux.describe().lock === undefined, 'the lease to run out'), { leaseMs: 200 }));
  t.ok(lapsed instanceof QmpError, 'a lock that lapsed under fn: what fn did may have run unprotected');
  t.match((lapsed as QmpError).desc, /^This client holds no lock: its write lock ended at \S+, when its lease of 200 ms ran out$/);
  await tool.lock('write', { reason: 'held' });
  const refused = await rejection(other.withLock('write', () => t.fail('not run')));
  t.match(refused, { name: 'QmpError', errorClass: 'GenericError', desc: /^Cannot take a write lock: client \d+ on endpoint 'tools' has held a write lock since \S+ \(reason: held\)$/ });
  await tool.unlock();
  const ends = (): unknown[] => audit().filter((l) => l.type === 'lock' && l.action === 'ended').map((l) => l.why);
  await eventually(() => ends().length === 4, 'the locks in the audit log');
  t.same(ends(), ['unlock', 'unlock', 'lease', 'unlock'], 'each released by its unlock, but the one whose lease ran out');
});

t.test('the shell: lock and unlock words, and the prompt shows who holds the lock', async (t) => {
  if (!needQemu(t) || !needTmux(t)) return;
  const { mux } = await lockBench(t);
  const term = await Terminal.start(t, [process.execPath, MAIN, 'shell', '--connect', mux.path, '--no-history'], { env: { HOME: socketDir(t) }, width: 200 });
  await term.waitForLine(/^\(QEMU\)$/);
  const other = await QmpClient.connect(`unix:${mux.path}`);
  t.teardown(() => other.close());
  await other.lock('write', { reason: 'nightly backup' });
  const line = await term.waitForLine(/^lock: client \d+ on endpoint 'tools' holds a write lock since \S+ \(reason: nightly backup\)$/);
  t.pass(line.find((l) => l.startsWith('lock: ')) ?? '');
  await term.waitForLine(/^\(QEMU, locked by client \d+\)$/);

  await term.type('lock exclusive wait-ms=60000\n');
  await eventually(() => mux.mux.describe().lock?.waiting.length === 1, 'the shell in line for the lock');
  await other.unlock();
  await term.waitForLine(/^\{"lease-ms":60000,"mode":"exclusive"\}$/);
  await term.waitForLine(/^\(QEMU, exclusive-locked\)$/);
  await term.waitForLine(/^lock: this shell holds an? exclusive lock$/);
  await term.type('unlock\n');
  await term.waitForLine(/^lock: none held now$/);
  await term.waitForLine(/^\(QEMU\)$/);
  await term.press('C-d');
  t.equal(await term.exited(), 0);
});

t.test("the shell's prompt drops a lock that went with its connection", async (t) => {
  if (!needQemu(t) || !needTmux(t)) return;
  const { mux, qemu } = await lockBench(t);
  const term = await Terminal.start(t, [process.execPath, MAIN, 'shell', '--connect', mux.path, '--no-history'], { env: { HOME: socketDir(t) }, width: 200 });
  await term.waitForLine(/^\(QEMU\)$/);
  await term.type('lock exclusive\n');
  await term.waitForLine(/^\(QEMU, exclusive-locked\)$/);
  await qemu.stop();
  await term.waitForLine(/^connection lost: .*; reconnecting\.\.\.$/);
  await term.waitForLine(/^\(QEMU\)$/);
  await term.press('C-d');
  t.equal(await term.exited(), 0);
});
