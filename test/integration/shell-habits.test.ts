import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { QmpClient } from '../../src/client/qmp-client.ts';
import { runShell } from '../../src/client/shell.ts';
import { MAIN, runCli } from '../fixtures/cli.ts';
import { fakeIo } from '../fixtures/cli-io.ts';
import { eventually } from '../fixtures/context.ts';
import { FakeQemu, replyTo, type Responder } from '../fixtures/fake-qemu.ts';
import { startMux } from '../fixtures/mux.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { socketDir } from '../fixtures/tmp.ts';
import { inputRow, needTmux, Terminal } from '../fixtures/tmux.ts';

/**
 * The shell for people with qmp-shell's habits in their fingers, in a real
 * terminal (tmux) against a real QEMU: the server as the one argument (a
 * path, HOST:PORT), -l (a session log, which qmp-shell's -l does not write),
 * -N (no negotiation: by hand, or QEMU's guest agent), events as they come
 * (qmp-shell shows them only on Enter), and quitting after a reconnect.
 */

const PROMPT = '(QEMU) ';

interface LogLine {
  time: string;
  connected?: string;
  disconnected?: string;
  sent?: Record<string, unknown>;
  received?: Record<string, unknown>;
}

t.test('the server as the one argument, -l FILE, events without Enter, and quitting after QEMU restarted', async (t) => {
  if (!needQemu(t) || !needTmux(t)) return;
  const dir = socketDir(t);
  const first = await startQemu(t, { dir, names: ['qemu.sock'], args: ['-name', 'first'] });
  const mux = await startMux(t, first.monitors[0]!);
  const log = join(dir, 'session.jsonl');
  const term = await Terminal.start(t, [process.execPath, MAIN, 'shell', '--no-history', '-l', log, mux.path], { env: { HOME: dir }, width: 120 });
  await term.waitForLine(/^Connected to QEMU 7\.2\.\d+ .*at unix:/);
  await term.waitForLine(/^\(QEMU\)$/);
  await term.type('query-name');
  await term.press('Enter');
  await term.waitForLine(/^\{"name":"first"\}$/);
  await term.type('nope');
  await term.press('Enter');
  await term.waitForLine(/^error: CommandNotFound: The command nope has not been found$/);

  await term.type('query-st');
  const other = await QmpClient.connect(mux.path);
  await other.execute('stop');
  await other.execute('cont');
  const screen = await term.belowRow(/^event RESUME \d\d:\d\d:\d\d\.\d{6}$/);
  t.ok(screen.some((l) => /^event STOP /.test(l)), 'events shown as they come, without Enter');
  t.equal(inputRow(screen), `${PROMPT}query-st`, 'what is being typed stays');
  await other.close();
  await term.press('C-u');

  await first.stop();
  await term.waitForLine(/^connection lost: unix:.*: the server closed the connection; reconnecting\.\.\.$/);
  await startQemu(t, { dir, names: ['qemu.sock'], args: ['-name', 'second'] });
  await term.waitForLine(/^reconnected: QEMU 7\.2\.\d+/);
  await term.waitFor((s) => inputRow(s) === '(QEMU)', 'the prompt');
  await term.press('C-c');
  t.equal(await term.exited(), 0, 'Ctrl-C on an empty line quits');
  t.equal((await term.screen()).filter((l) => l.startsWith('connection lost')).length, 1, 'and says nothing of a lost connection: it was quitting');

  const lines = readFileSync(log, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as LogLine);
  for (const line of lines) t.match(line.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  const what = lines.map(({ time: _time, ...rest }) => rest);
  t.match(what, [
    { connected: `unix:${mux.path}` },
    { received: { QMP: { version: { qemu: { micro: Number, minor: 2, major: 7 } }, capabilities: ['oob'] } } },
    { sent: { execute: 'query-name' } },
    { received: { return: { name: 'first' } } },
    { sent: { execute: 'nope' } },
    { received: { error: { class: 'CommandNotFound', desc: 'The command nope has not been found' } } },
    { received: { event: 'STOP', timestamp: { seconds: Number, microseconds: Number } } },
    { received: { event: 'RESUME' } },
    { disconnected: `unix:${mux.path}: the server closed the connection` },
    { connected: `unix:${mux.path}` },
    { received: { QMP: { version: { qemu: { major: 7 } } } } },
    { disconnected: 'the shell closed the connection' },
  ]);
  t.equal(what.length, 12, 'the completion queries are not in the log');
  t.notOk(JSON.stringify(what).includes('query-commands'), 'nor the shell\'s other own queries');
});

t.test('-N: no negotiation; qmp_capabilities by hand, then completion learns; HOST:PORT', async (t) => {
  if (!needQemu(t) || !needTmux(t)) return;
  const qemu = await startQemu(t);
  const mux = runCli(t, ['--upstream', `unix:${qemu.monitors[0]!}`, '--listen', 'tcp:127.0.0.1:0']);
  const [, port] = await mux.waitFor(/clients connect at tcp:127\.0\.0\.1:(\d+)/);
  const dir = socketDir(t);
  const term = await Terminal.start(t, [process.execPath, MAIN, 'shell', '--no-history', '-N', `127.0.0.1:${port}`], { env: { HOME: dir }, width: 120 });
  await term.waitForLine(new RegExp(`^Connected to tcp:127\\.0\\.0\\.1:${port}, without negotiating \\(-N\\): send qmp_capabilities to negotiate$`));
  await term.waitForLine(/^greeting: QEMU 7\.2\.\d+ .*, capabilities: oob$/);
  // Typed before the prompt, a line is echoed by the terminal itself and its answer lands on the prompt's row.
  await term.waitFor((s) => inputRow(s) === '(QEMU)', 'the first prompt');
  await term.type('query-status');
  await term.press('Enter');
  await term.waitForLine(/^error: CommandNotFound: Expecting capabilities negotiation with 'qmp_capabilities'$/);
  await term.type('qmp_capabilities');
  await term.press('Enter');
  await term.waitForLine(/^\{\}$/);
  // Negotiated by hand, the shell asks what completion needs at once: the reply to a command typed next comes after.
  await term.type('query-version');
  await term.press('Enter');
  await term.waitForLine(/"qemu":\{"micro"/);
  await term.type('query-sta');
  await term.press('Tab');
  await term.waitFor((s) => inputRow(s) === `${PROMPT}query-stat`, 'completion, learnt once negotiated');
  await term.type('us');
  await term.press('Enter');
  await term.waitForLine(/^\{"status":"running","singlestep":false,"running":true\}$/);
  await term.press('C-d');
  t.equal(await term.exited(), 0);
});

t.test("-N with a server that sends no greeting (QEMU's guest agent), and that restarts", async (t) => {
  const options = { greeting: '', respond: ((cmd, raw) => (cmd.execute === 'guest-ping' ? replyTo(raw, { return: '{}' }) : replyTo(raw, { error: '{"class": "CommandNotFound", "desc": "no"}' }))) as Responder };
  const agent = await FakeQemu.start(t, options);
  const io = fakeIo();
  const running = runShell(['-N', '--no-history', agent.path], io);
  await eventually(() => io.out().startsWith(`Connected to unix:${agent.path}, without negotiating (-N): send qmp_capabilities to negotiate\n`), () => `the banner: ${io.out()}`);
  io.stdin.write('guest-ping\n');
  await eventually(() => io.out().endsWith('{}\n'), () => `the reply: ${io.out()}`);
  t.notOk(agent.received.some((r) => r.includes('qmp_capabilities')), 'nothing negotiated');
  t.ok(agent.received.some((r) => r.includes('guest-ping')));
  await agent.close();
  await eventually(() => io.out().includes('connection lost:'), () => `the loss: ${io.out()}`);
  const again = await FakeQemu.startAt(t, agent.path, options);
  await eventually(() => io.out().includes(`reconnected to unix:${agent.path}, without negotiating (-N)\n`), () => `the reconnection: ${io.out()}`);
  io.stdin.end('guest-ping\n');
  t.equal(await running, 0);
  t.ok(again.received.some((r) => r.includes('guest-ping')), 'the agent that came back is asked, without negotiation');
  t.notOk(again.received.some((r) => r.includes('qmp_capabilities')));
});

t.test('usage: the server once; a log that cannot be written is said once', async (t) => {
  const fake = await FakeQemu.start(t);
  const twice = fakeIo();
  t.equal(await runShell(['--connect', fake.path, fake.path], twice), 2);
  t.equal(twice.err(), `qmp-mux shell: unexpected argument '${fake.path}' (the server is already given with --connect)\ntry 'qmp-mux shell --help'\n`);
  const bad = join(socketDir(t), 'no', 'such', 'dir', 'log');
  const io = fakeIo({ input: 'query-name\nquery-name\n' });
  t.equal(await runShell(['--no-history', '-l', bad, fake.path], io), 0);
  t.match(io.err(), new RegExp(`^qmp-mux shell: log ${bad}: ENOENT[^\\n]*; not logging the session\\n$`));
  t.match(io.out(), /\{\}\n\{\}\n$/, 'the shell goes on');
});
