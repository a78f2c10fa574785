import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { alive, INJECT_FAULT, runCli, type CliOptions, type Running } from '../fixtures/cli.ts';
import { eventually } from '../fixtures/context.ts';
import { processesMentioning } from '../fixtures/proc.ts';
import { needQemu } from '../fixtures/qemu.ts';
import { TestClient } from '../fixtures/qmp-client.ts';
import { socketDir } from '../fixtures/tmp.ts';

/**
 * Every way qmp-mux ends, in spawn mode (it started QEMU): no QEMU it
 * started left running, no socket file or temporary directory of its own
 * left behind, and the exit status the README gives.
 */

interface Started {
  run: Running;
  /** Where clients connect. */
  sock: string;
  qemuPid: number;
}

/** The embedded default (a throwaway QEMU), in a directory of its own, once QEMU is connected. */
async function start(t: Test, args: string[] = [], options: CliOptions = {}): Promise<Started> {
  const dir = socketDir(t);
  const run = runCli(t, args, { cwd: dir, ...options });
  const qemuPid = Number((await run.waitFor(/QEMU started pid=(\d+)/))[1]);
  t.teardown(() => {
    if (alive(qemuPid)) process.kill(qemuPid, 'SIGKILL');
  });
  await run.waitFor(/QEMU connected/);
  return { run, sock: join(dir, 'qmp-mux.sock'), qemuPid };
}

/** What every exit path must leave: nothing of qmp-mux's. */
async function leftNothing(t: Test, { run, sock, qemuPid }: Started): Promise<void> {
  await eventually(() => !alive(qemuPid), `the QEMU qmp-mux started (pid ${qemuPid}) to be gone`);
  t.notOk(alive(qemuPid), 'no QEMU left running');
  t.notOk(existsSync(sock), 'no socket file left');
  t.same(run.leftInTmp(), [], 'no temporary directory left');
}

for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  t.test(`${signal}: QEMU stopped, everything removed, exit 0`, async (t) => {
    if (!needQemu(t)) return;
    const started = await start(t);
    started.run.child.kill(signal);
    t.same(await started.run.exited, { code: 0, signal: null });
    t.match(started.run.stderr(), new RegExp(`stopping signal=${signal}`));
    await leftNothing(t, started);
  });
}

for (const fault of ['exception', 'rejection'] as const) {
  t.test(`an internal error (an uncaught ${fault}): QEMU stopped, everything removed, exit 70, one line saying why`, async (t) => {
    if (!needQemu(t)) return;
    const started = await start(t, [], { node: ['--import', INJECT_FAULT], env: { INJECT_FAULT: fault } });
    started.run.child.kill('SIGPWR');
    t.same(await started.run.exited, { code: 70, signal: null });
    const lines = started.run.stderr().split('\n').filter((l) => l.includes('internal error'));
    t.equal(lines.length, 1, 'one line');
    t.match(lines[0], fault === 'exception' ? /internal error; stopping error="injected failure \(at / : /internal error; stopping error="injected rejection \(at /);
    t.match(started.run.stderr(), /asking QEMU to quit/, 'QEMU stopped as configured (quit)');
    await leftNothing(t, started);
  });
}

t.test('a signal during start-up: whatever start-up began is stopped too', async (t) => {
  if (!needQemu(t)) return;
  // qmp-mux logs finding an earlier qmp-mux's leftover directory as it prepares to start QEMU,
  // and QEMU is started only after the endpoints listen: a signal sent on that line arrives between.
  for (let i = 0; i < 5; i++) {
    const dir = socketDir(t);
    const tmp = socketDir(t);
    mkdirSync(join(tmp, 'qmp-mux-999999999-stale0'));
    const run = runCli(t, [], { cwd: dir, env: { TMPDIR: tmp } });
    await run.waitFor(/removed the private directory of an earlier qmp-mux/);
    run.child.kill('SIGTERM');
    t.same(await run.exited, { code: 0, signal: null }, `attempt ${i}: exit 0`);
    await eventually(() => processesMentioning(tmp).length === 0, () => `no QEMU started in ${tmp} left running (${processesMentioning(tmp).join(' ')})`);
    t.same(readdirSync(tmp), [], 'nothing left in its temporary directory');
    t.notOk(existsSync(join(dir, 'qmp-mux.sock')), 'nor its socket');
  }
});

t.test('QEMU quits: qmp-mux exits with its status, everything removed', async (t) => {
  if (!needQemu(t)) return;
  const started = await start(t);
  const c = await TestClient.connect(started.sock);
  await c.negotiate();
  c.send('{"execute":"quit"}');
  t.same(await started.run.exited, { code: 0, signal: null });
  await leftNothing(t, started);
});

t.test('QEMU killed: qmp-mux exits 128 + the signal, everything removed', async (t) => {
  if (!needQemu(t)) return;
  const started = await start(t);
  process.kill(started.qemuPid, 'SIGKILL');
  t.same(await started.run.exited, { code: 137, signal: null });
  await leftNothing(t, started);
});

t.test('a second signal while stopping ends it at once, QEMU too', async (t) => {
  if (!needQemu(t)) return;
  // -machine none has no ACPI: the guest never powers down, so the stop would wait a minute.
  const started = await start(t, ['--on-stop', 'powerdown', '--powerdown-timeout', '60000']);
  started.run.child.kill('SIGINT');
  await started.run.waitFor(/asking the guest to power down/);
  started.run.child.kill('SIGINT');
  t.same(await started.run.exited, { code: 1, signal: null });
  t.match(started.run.stderr(), /stopping at once signal=SIGINT/);
  await leftNothing(t, started);
});

/** qmp-mux asked to stop (SIGTERM) a QEMU frozen by SIGSTOP, once it has asked QEMU to quit. */
async function stoppingFrozen(t: Test): Promise<Started> {
  const started = await start(t);
  process.kill(started.qemuPid, 'SIGSTOP');
  started.run.child.kill('SIGTERM');
  await started.run.waitFor(/asking QEMU to quit/);
  return started;
}

t.test('a frozen QEMU (SIGSTOP) does not hang the stop: unanswered, it is terminated after the 10 s it had to quit', async (t) => {
  if (!needQemu(t)) return;
  const started = await stoppingFrozen(t);
  t.same(await started.run.exited, { code: 0, signal: null });
  t.match(started.run.stderr(), /QEMU did not quit; terminating it/);
  await leftNothing(t, started);
});

t.test('a second signal while stopping a frozen QEMU: it ends too, not stopped for ever', async (t) => {
  if (!needQemu(t)) return;
  const started = await stoppingFrozen(t);
  started.run.child.kill('SIGTERM');
  t.same(await started.run.exited, { code: 1, signal: null });
  await leftNothing(t, started);
});

t.test('start-up failures leave nothing behind', async (t) => {
  if (!needQemu(t)) return;
  const dir = socketDir(t);
  const file = join(dir, 'not-a-socket');
  writeFileSync(file, '');
  const inTheWay = runCli(t, ['--listen', `unix:${file}`], { cwd: dir });
  t.same(await inTheWay.exited, { code: 2, signal: null }, 'refused before anything starts');
  t.equal(inTheWay.stderr(), `qmp-mux: endpoint 'default' (unix:${file}): a file that is not a socket is in the way\n`);
  t.same(inTheWay.leftInTmp(), []);

  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  t.teardown(() => taken.close());
  const port = (taken.address() as { port: number }).port;
  const busy = runCli(t, ['--listen', `unix:${join(dir, 'first.sock')}`, '--listen', `tcp:127.0.0.1:${port}`], { cwd: dir });
  t.same(await busy.exited, { code: 1, signal: null }, 'an address in use is found only when binding: exit 1');
  t.match(busy.stderr(), new RegExp(`cannot listen on tcp:127\\.0\\.0\\.1:${port}: the address is in use`));
  t.notMatch(busy.stderr(), /QEMU started/, 'QEMU was never started');
  t.notOk(existsSync(join(dir, 'first.sock')), 'the endpoint that did listen was closed and removed');
  t.same(busy.leftInTmp(), []);
});

t.test('stdout and stderr closed (qmp-mux 2>&1 | head -3): qmp-mux carries on', async (t) => {
  if (!needQemu(t)) return;
  const started = await start(t);
  started.run.child.stdout!.destroy();
  started.run.child.stderr!.destroy();
  for (let i = 0; i < 5; i++) {
    const c = await TestClient.connect(started.sock);
    await c.negotiate();
    t.match(await c.execute('query-status'), /"running": true/, `client ${i} served; its connect and disconnect are logged into a closed pipe`);
    c.close();
  }
  t.ok(alive(started.run.child.pid!), 'still running');
  started.run.child.kill('SIGTERM');
  t.same(await started.run.exited, { code: 0, signal: null });
  await leftNothing(t, started);
});

t.test('SIGKILL cannot be caught: QEMU keeps running, and the next start says so', async (t) => {
  if (!needQemu(t)) return;
  const first = await start(t);
  first.run.child.kill('SIGKILL');
  await first.run.exited;
  t.ok(alive(first.qemuPid), 'the QEMU it started is still running');
  const left = first.run.leftInTmp();
  t.match(left, [/^qmp-mux-\d+-/], 'with its private directory');
  const second = runCli(t, ['--listen', `unix:${join(first.run.tmp, 'second.sock')}`], { env: { TMPDIR: first.run.tmp } });
  const warning = await second.waitFor(/a QEMU started by an earlier qmp-mux is still running[^\n]*/);
  t.match(warning[0], new RegExp(`pid=${first.qemuPid} .*qmp=unix:${first.run.tmp}/${left[0]}/qmp\\.sock`), 'naming its pid and its socket');
  second.child.kill('SIGTERM');
  await second.exited;
  process.kill(first.qemuPid, 'SIGKILL');
  await eventually(() => !alive(first.qemuPid), 'QEMU to go');
  const third = runCli(t, ['--listen', `unix:${join(first.run.tmp, 'third.sock')}`], { env: { TMPDIR: first.run.tmp } });
  await third.waitFor(/removed the private directory of an earlier qmp-mux that did not exit cleanly/);
  t.notOk(existsSync(join(first.run.tmp, left[0]!)), 'a private directory with no QEMU behind it is removed');
  third.child.kill('SIGTERM');
  t.same(await third.exited, { code: 0, signal: null });
});
