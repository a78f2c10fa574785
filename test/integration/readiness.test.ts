import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { runCli } from '../fixtures/cli.ts';
import { startNotifySocket } from '../fixtures/notify-socket.ts';
import { needProgram } from '../fixtures/programs.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { socketDir } from '../fixtures/tmp.ts';

/**
 * Readiness: systemd learns that qmp-mux is ready (Type=notify) once every
 * listener is open and QEMU is connected, through systemd's own
 * systemd-notify, received here on a socket of the test's own as systemd
 * would receive it; and `qmp-mux wait-ready` tells a script the same.
 */

const SERVICE = readFileSync(new URL('../../config/systemd/qmp-mux@.service', import.meta.url), 'utf8');

t.test('the unit waits for readiness: Type=notify, and systemd-notify is a child, so NotifyAccess=all', async (t) => {
  t.match(SERVICE, /^Type=notify$/m);
  t.match(SERVICE, /^NotifyAccess=all$/m);
});

t.test('spawn mode: READY=1 once QEMU is connected, with a status; STOPPING=1 on SIGTERM; QEMU does not see NOTIFY_SOCKET', async (t) => {
  if (!needQemu(t) || !needProgram(t, 'systemd-notify', 'systemd') || !needProgram(t, 'python3', 'python3')) return;
  const notify = await startNotifySocket(t);
  const sock = join(socketDir(t), 'vm.sock');
  const mux = runCli(t, ['--listen', `unix:${sock}`], { env: { NOTIFY_SOCKET: notify.path } });
  const ready = await notify.waitFor((m) => m.includes('READY=1'), 'READY=1');
  t.match(mux.stderr(), /INFO  QEMU connected/, 'QEMU was connected before READY=1 was sent');
  t.match(mux.stdout(), `qmp-mux: clients connect at unix:${sock}`, 'and the endpoint listening');
  t.same(ready.split('\n').sort(), ['MAINPID=' + mux.child.pid, 'READY=1', `STATUS=QEMU connected; clients connect at unix:${sock}`]);
  const [, qemuPid] = /QEMU started pid=(\d+)/.exec(mux.stderr())!;
  t.notMatch(readFileSync(`/proc/${qemuPid}/environ`, 'latin1'), /NOTIFY_SOCKET=/, "QEMU's environment has no NOTIFY_SOCKET");
  mux.child.kill('SIGTERM');
  t.same(await mux.exited, { code: 0, signal: null });
  t.ok(notify.messages().some((m) => m.split('\n').includes('STOPPING=1')), `STOPPING=1 before qmp-mux exited: ${JSON.stringify(notify.messages())}`);
  t.equal(notify.messages().filter((m) => m.includes('READY=1')).length, 1, 'READY=1 once');
});

t.test('connect mode: nothing while QEMU is away, READY=1 once it is there; qmp-mux wait-ready says the same', async (t) => {
  if (!needQemu(t) || !needProgram(t, 'systemd-notify', 'systemd') || !needProgram(t, 'python3', 'python3')) return;
  const notify = await startNotifySocket(t);
  const dir = socketDir(t);
  const sock = join(dir, 'vm.sock');
  const mux = runCli(t, ['--upstream', `unix:${join(dir, 'qemu.sock')}`, '--listen', `unix:${sock}`], { env: { NOTIFY_SOCKET: notify.path } });
  await mux.waitFor(/QEMU unreachable, retrying/);
  t.same(notify.messages(), [], 'endpoint open, QEMU away: not ready');

  const early = runCli(t, ['wait-ready', '--timeout', '300', sock]);
  t.same(await early.exited, { code: 4, signal: null }, 'wait-ready: not ready in time');
  t.match(early.stderr(), new RegExp(`^qmp-mux wait-ready: unix:${sock}: not ready within 300 ms`));
  const waiting = runCli(t, ['wait-ready', '--timeout', '0', '--connect', sock]);
  await mux.waitFor(/client connected endpoint=default client=local#2/);

  await startQemu(t, { dir, names: ['qemu.sock'] });
  await notify.waitFor((m) => m.includes('READY=1'), 'READY=1');
  t.match(mux.stderr(), /INFO  QEMU connected/, 'sent once QEMU was connected');
  t.same(await waiting.exited, { code: 0, signal: null }, 'the waiting script learns it too');
  t.match(waiting.stdout(), new RegExp(`^ready: QEMU 7\\.2\\.\\d+ .* at unix:${sock}\\n$`));
  const quiet = runCli(t, ['wait-ready', '-q'], { env: { QMP_SOCKET: sock } });
  t.same(await quiet.exited, { code: 0, signal: null });
  t.equal(quiet.stdout(), '', '-q prints nothing; $QMP_SOCKET as for the other clients');
});

t.test('wait-ready: a socket that appears later, a server that is not QMP, bad usage', async (t) => {
  if (!needQemu(t)) return;
  const dir = socketDir(t);
  const later = join(dir, 'later.sock');
  const waiting = runCli(t, ['wait-ready', later]);
  const mux = runCli(t, ['--listen', `unix:${later}`]);
  t.same(await waiting.exited, { code: 0, signal: null }, 'retries until qmp-mux is there and QEMU is connected');
  t.match(mux.stderr(), /QEMU connected/);

  const other = join(dir, 'http.sock');
  const server = createServer((s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
  await new Promise<void>((r) => server.listen(other, r));
  t.teardown(() => server.close());
  const wrong = runCli(t, ['wait-ready', '--timeout', '20000', other]);
  t.same(await wrong.exited, { code: 3, signal: null }, 'not a QMP server: status 3 at once');
  t.match(wrong.stderr(), /^qmp-mux wait-ready: unix:.*http\.sock: /);

  const usage = runCli(t, ['wait-ready', 'a.sock', 'b.sock']);
  t.same(await usage.exited, { code: 2, signal: null });
  t.equal(usage.stderr(), "qmp-mux wait-ready: unexpected argument 'b.sock'\ntry 'qmp-mux wait-ready --help'\n");
});

t.test('NOTIFY_SOCKET set but no systemd-notify: exit 2 at once, rather than leave systemd waiting', async (t) => {
  const dir = socketDir(t);
  for (const extra of [['--check-config'], []]) {
    const run = runCli(t, ['--upstream', `unix:${join(dir, 'qemu.sock')}`, '--listen', `unix:${join(dir, 'vm.sock')}`, ...extra], { env: { NOTIFY_SOCKET: join(dir, 'notify'), PATH: dir } });
    t.same(await run.exited, { code: 2, signal: null }, extra.join(' ') || 'start');
    t.equal(run.stderr(), 'qmp-mux: NOTIFY_SOCKET is set (a systemd Type=notify service), but systemd-notify is not on PATH: qmp-mux tells systemd it is ready through it (Debian package systemd)\n');
  }
});

t.test('a NOTIFY_SOCKET nobody listens on: one error line, and qmp-mux serves all the same', async (t) => {
  if (!needQemu(t) || !needProgram(t, 'systemd-notify', 'systemd')) return;
  const dir = socketDir(t);
  const sock = join(dir, 'vm.sock');
  const mux = runCli(t, ['--listen', `unix:${sock}`], { env: { NOTIFY_SOCKET: join(dir, 'nobody') } });
  await mux.waitFor(/ERROR cannot notify systemd program=\S*systemd-notify socket=\S*nobody why=/);
  const ready = runCli(t, ['wait-ready', sock]);
  t.same(await ready.exited, { code: 0, signal: null }, 'clients are served');
  mux.child.kill('SIGTERM');
  t.same(await mux.exited, { code: 0, signal: null });
  t.equal(mux.stderr().match(/cannot notify systemd/g)?.length, 1, 'said once, though STOPPING=1 failed too');
});

