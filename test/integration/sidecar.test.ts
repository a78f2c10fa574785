import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { createLogger } from '../../src/log.ts';
import { Dialer } from '../../src/upstream/dial-source.ts';
import { ListenSource } from '../../src/upstream/listen-source.ts';
import { eventually } from '../fixtures/context.ts';
import { MainLoopBlocker } from '../fixtures/blocker.ts';
import { alive, runCli } from '../fixtures/cli.ts';
import { startMux } from '../fixtures/mux.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { TestClient } from '../fixtures/qmp-client.ts';
import { socketDir } from '../fixtures/tmp.ts';

/** qmp-mux over QEMU's whole life: QEMU late, QEMU gone and back, QEMU frozen, stopping cleanly. */

/** A counter for a Dialer's `beforeRetry`. */
function counting(): { n: number; count: () => Promise<void> } {
  const c = {
    n: 0,
    count: async (): Promise<void> => {
      c.n++;
    },
  };
  return c;
}

/** Log lines whose message (after the level) starts with `msg`. */
const count = (logs: string[], msg: string): number => logs.filter((l) => new RegExp(`^\\S+ [A-Z]+ +${msg}`).test(l)).length;

t.test('QEMU started after qmp-mux: clients wait for the greeting; one log line, not one per retry', async (t) => {
  if (!needQemu(t)) return;
  const dir = socketDir(t);
  const path = join(dir, 'late.sock');
  const retries = counting();
  const mux = await startMux(t, path, { source: (log) => new Dialer({ address: { type: 'unix', path }, backoff: { initialMs: 5, maxMs: 20 }, log, beforeRetry: retries.count }) });
  const early = await TestClient.connect(mux.path);
  await eventually(() => retries.n >= 5, 'qmp-mux to dial five times more');
  t.equal(early.lines.length, 0, 'no greeting without QEMU');
  await startQemu(t, { dir, names: ['late.sock'] });
  t.match(await early.next(), /^\{"QMP": /, 'greeted once QEMU is there');
  early.send('{"execute":"qmp_capabilities"}{"execute":"query-status","id":1}');
  t.equal(await early.next(), '{"return": {}}');
  t.match(await early.next(), /"running": true/);
  t.equal(count(mux.logs, 'QEMU unreachable, retrying'), 1, 'many retries, one line');
  t.equal(count(mux.logs, 'QEMU connected'), 1);
});

t.test('QEMU killed mid-command and restarted on the same socket', async (t) => {
  if (!needQemu(t)) return;
  const dir = socketDir(t);
  const first = await startQemu(t, { dir, names: ['vm.sock'] });
  const mux = await startMux(t, join(dir, 'vm.sock'), { backoff: { initialMs: 5, maxMs: 50 } });
  const blocker = new MainLoopBlocker(dir);
  t.teardown(() => blocker.close());
  const a = await TestClient.connect(mux.path);
  await a.negotiate();
  a.send('{"execute":"stop","id":"s"}');
  await a.waitLines(4);
  a.send(blocker.command('stuck'));
  await blocker.untilBlocked(first.process.pid!);
  first.process.kill('SIGKILL');
  await first.exited;
  const rest = await a.rest();
  t.match(rest, [/"event": "STOP"/, '{"return": {}, "id": "s"}'], 'what QEMU sent before dying');
  t.equal(rest.length, 2, 'then EOF: no reply to the stuck command');
  const waiting = await TestClient.connect(mux.path);
  await startQemu(t, { dir, names: ['vm.sock'] });
  const greeting = await waiting.next();
  t.match(greeting, /^\{"QMP": \{"version": /, 'the new QEMU greets');
  waiting.send('{"execute":"qmp_capabilities"}{"execute":"query-status","id":2}');
  await waiting.next();
  t.match(await waiting.next(), /"status": "running"/, 'a fresh QEMU: nothing was replayed (the old one was stopped)');
  t.equal(count(mux.logs, 'QEMU disconnected'), 1, `one disconnect logged:\n${mux.logs.join('\n')}`);
});

t.test('listen mode: QEMU connects with reconnect=1; either side can restart first', async (t) => {
  if (!needQemu(t)) return;
  const dir = socketDir(t);
  const path = join(dir, 'upstream.sock');
  const startListening = async () =>
    startMux(t, path, {
      source: (log) => new ListenSource({ address: { type: 'unix', path }, log }),
    });
  let mux = await startListening();
  const qemu = await startQemu(t, { dir, monitors: 0, args: ['-chardev', `socket,id=mon0,path=${path},reconnect=1`, '-mon', 'chardev=mon0,mode=control'] });
  const c = await TestClient.connect(mux.path);
  await c.negotiate();
  t.match(await c.execute('query-status'), /"running": true/);

  for (let i = 0; i < 3; i++) {
    const intruder = await TestClient.connect(path);
    await intruder.rest();
    t.equal(intruder.lines.length, 0, 'a second QEMU is turned away');
  }
  t.equal(count(mux.logs, 'refused a QEMU connection: one is already attached'), 3, 'each refusal logged');
  t.equal(mux.logs.filter((l) => / WARN +refused a QEMU connection/.test(l)).length, 1, 'one warning, not one a second for as long as it retries');

  await mux.stop();
  t.same(await c.rest(), [], 'clients see EOF when qmp-mux stops');
  mux = await startListening();
  const again = await TestClient.connect(mux.path);
  t.match(await again.next(), /^\{"QMP": /, 'QEMU reconnected by itself');
  again.send('{"execute":"qmp_capabilities"}{"execute":"query-status"}');
  await again.next();
  t.match(await again.next(), /"running": true/);
  t.ok(alive(qemu.process.pid!));
});

t.test('listen mode: a QEMU that dies while the link is idle is noticed at once, and its successor attaches', async (t) => {
  if (!needQemu(t)) return;
  const dir = socketDir(t);
  const path = join(dir, 'upstream.sock');
  const mux = await startMux(t, path, { source: (log) => new ListenSource({ address: { type: 'unix', path }, log }) });
  const qemuArgs = ['-chardev', `socket,id=mon0,path=${path},reconnect=1`, '-mon', 'chardev=mon0,mode=control'];
  const first = await startQemu(t, { dir, monitors: 0, args: qemuArgs });
  const c = await TestClient.connect(mux.path);
  await c.negotiate();
  t.match(await c.execute('query-status'), /"running": true/);
  // Nothing unread in QEMU's socket: the kernel ends the link with a plain FIN, not a reset.
  first.process.kill('SIGKILL');
  await first.exited;
  t.same(await c.rest(), [], 'the client sees EOF without sending anything');
  t.equal(count(mux.logs, 'QEMU disconnected'), 1, 'logged');
  await startQemu(t, { dir, monitors: 0, args: qemuArgs });
  const next = await TestClient.connect(mux.path);
  await next.negotiate();
  t.match(await next.execute('query-status'), /"running": true/, 'the next QEMU is attached, not refused');
  t.equal(count(mux.logs, 'refused a QEMU connection'), 0);
});

t.test('listen mode: a QEMU connecting before qmp-mux serves is turned away, and the log says why', async (t) => {
  const dir = socketDir(t);
  const path = join(dir, 'upstream.sock');
  const logs: string[] = [];
  const listener = new ListenSource({ address: { type: 'unix', path }, log: createLogger({ level: 'debug', format: 'text', trace: false, sink: (l) => logs.push(l) }) });
  await listener.open();
  t.teardown(() => listener.stop());
  const early = await TestClient.connect(path);
  t.same(await early.rest(), [], 'closed at once');
  t.equal(count(logs, 'refused a QEMU connection: qmp-mux is still starting'), 1);
});

t.test('a frozen QEMU (SIGSTOP) hangs nothing but its own commands', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t);
  const mux = await startMux(t, qemu.monitors[0]!);
  const a = await TestClient.connect(mux.path);
  await a.negotiate();
  t.teardown(() => void qemu.process.kill('SIGCONT'));
  qemu.process.kill('SIGSTOP');
  a.send('{"execute":"query-status","id":"frozen"}');
  const b = await TestClient.connect(mux.path);
  t.match(await b.next(), /^\{"QMP": /, 'new clients still get QEMU\'s greeting');
  b.send('{"execute":"qmp_capabilities"}');
  t.equal(await b.next(), '{"return": {}}', 'negotiation is answered');
  b.send('{"execute":"__org.qmp-mux_query-proxy","id":"p"}');
  t.match(await b.next(), /"id": "p"/, 'qmp-mux answers its own commands');
  b.send('{"execute":"query-name","id":"waits"}');
  await eventually(() => mux.mux.listClients().every((c) => c.inFlight === 1), 'qmp-mux to hold a command of each client');
  t.equal(a.lines.length, 2, 'commands wait while QEMU is frozen');
  qemu.process.kill('SIGCONT');
  t.match(await a.next(), /"id": "frozen"/, 'and complete when it resumes');
  t.equal(await b.nextReply(), '{"return": {}, "id": "waits"}');
});

t.test('a QEMU monitor held by another client: qmp-mux waits for it, retrying quietly', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t);
  const holder = await TestClient.connect(qemu.monitors[0]!);
  await holder.next();
  const retries = counting();
  const address = { type: 'unix' as const, path: qemu.monitors[0]! };
  const mux = await startMux(t, address, { timeouts: { upstreamGreetingMs: 200 }, source: (log) => new Dialer({ address, backoff: { initialMs: 20, maxMs: 50 }, log, beforeRetry: retries.count }) });
  const c = await TestClient.connect(mux.path);
  await eventually(() => retries.n >= 3, 'qmp-mux to try three times more');
  t.equal(c.lines.length, 0, 'no greeting while QEMU serves someone else');
  t.equal(count(mux.logs, 'QEMU connection failed before negotiation'), 1, 'one warning for many attempts');
  holder.close();
  t.match(await c.next(), /^\{"QMP": /, 'greeted once the monitor is free');
});

t.test('a client waiting for QEMU too long is closed, with a log line', async (t) => {
  const dir = socketDir(t);
  const mux = await startMux(t, join(dir, 'nothing.sock'), { timeouts: { clientGreetingMs: 150 } });
  const c = await TestClient.connect(mux.path);
  t.same(await c.rest(), [], 'closed without a greeting');
  await eventually(() => mux.logs.some((l) => l.includes('client disconnected') && l.includes('no QEMU to greet it in time')), 'the disconnect to be logged, with why');
});

/**
 * qmp-mux as its own process in front of a real QEMU, with `shutdownMs`,
 * and a negotiated client whose command is stuck behind QEMU's blocked main loop.
 */
async function stuckAtShutdown(t: Test, shutdownMs: number, id: string) {
  const dir = socketDir(t);
  const qemu = await startQemu(t, { dir });
  const blocker = new MainLoopBlocker(dir);
  t.teardown(() => {
    blocker.release();
    blocker.close();
  });
  const config = join(dir, 'mux.json');
  const sock = join(dir, 'm.sock');
  writeFileSync(config, JSON.stringify({ upstream: { connect: `unix:${qemu.monitors[0]}` }, endpoints: [{ name: 'main', listen: `unix:${sock}` }], timeouts: { shutdownMs } }));
  const run = runCli(t, ['--config', config]);
  await run.waitFor(/clients connect at/);
  const client = await TestClient.connect(sock);
  await client.negotiate();
  client.send(blocker.command(id));
  await blocker.untilBlocked(qemu.process.pid!);
  return { qemu, blocker, run, client };
}

t.test('SIGTERM: replies already owed still reach their clients, then a clean exit', async (t) => {
  if (!needQemu(t)) return;
  // A shutdown timeout of a day: the reply must be waited for, however long it takes.
  const { qemu, blocker, run, client } = await stuckAtShutdown(t, 24 * 3600 * 1000, 'owed');
  run.child.kill('SIGTERM');
  await run.waitFor(/stopping/);
  blocker.release();
  t.same(await client.rest(), ['{"return": {}, "id": "owed"}'], 'the reply, then EOF');
  t.same(await run.exited, { code: 0, signal: null });
  t.ok(alive(qemu.process.pid!), 'a QEMU qmp-mux did not start is left alone');
});

t.test('SIGTERM with a reply that never comes: exit after the shutdown timeout', async (t) => {
  if (!needQemu(t)) return;
  const { run, client } = await stuckAtShutdown(t, 300, 'never');
  const started = Date.now();
  run.child.kill('SIGTERM');
  t.same(await run.exited, { code: 0, signal: null }, 'it exits (tap\'s timeout would end a wait without end)');
  t.ok(Date.now() - started >= 300, 'after waiting the shutdown timeout for the reply');
  t.same(await client.rest(), [], 'EOF');
});

t.test('spawn mode stop policies', async (t) => {
  if (!needQemu(t)) return;
  const qemuArgs = ['--', 'qemu-system-x86_64', '-machine', 'none', '-nodefaults', '-display', 'none'];
  for (const [policy, extra, expectAlive] of [
    ['quit', [], false],
    ['powerdown', ['--powerdown-timeout', '300'], false],
    ['leave', [], true],
  ] as const) {
    const dir = socketDir(t);
    const run = runCli(t, ['--listen', `unix:${join(dir, 'm.sock')}`, '--on-stop', policy, ...extra, ...qemuArgs]);
    await run.waitFor(/QEMU connected/);
    const pid = Number((await run.waitFor(/QEMU started pid=(\d+)/))[1]);
    t.teardown(() => {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    });
    run.child.kill('SIGINT');
    t.same(await run.exited, { code: 0, signal: null }, `${policy}: exit 0`);
    if (!expectAlive) await eventually(() => !alive(pid), `QEMU (pid ${pid}) to exit`);
    t.equal(alive(pid), expectAlive, `${policy}: QEMU ${expectAlive ? 'left running' : 'stopped'}`);
    if (policy === 'powerdown') t.match(run.stderr(), /asking the guest to power down[\s\S]*asking QEMU to quit/, 'powerdown first, quit after the timeout');
    if (policy === 'quit') t.match(run.stderr(), /asking QEMU to quit/);
    if (policy === 'quit') t.notMatch(run.stderr(), /did not quit; terminating/, 'QEMU quit when asked');
  }
});

t.test('logs: JSON lines with --log-format json; --trace logs each message with its direction, endpoint and client', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t);
  const sock = join(socketDir(t), 'm.sock');
  const run = runCli(t, ['--upstream', `unix:${qemu.monitors[0]}`, '--listen', `unix:${sock}`, '--log-format', 'json', '--trace']);
  await run.waitFor(/QEMU connected/);
  const c = await TestClient.connect(sock);
  await c.next();
  // Three messages in one write: three lines, not one per read.
  c.send('{"execute":"qmp_capabilities"} {"execute":"query-name","id":"traced"}\n{ "execute" : "query-status", "id" : "second" }');
  await c.waitLines(4);
  c.close();
  await run.waitFor(/client disconnected/);
  run.child.kill('SIGTERM');
  await run.exited;
  const lines = run.stderr().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.ok(lines.every((l) => typeof l.time === 'string' && typeof l.level === 'string' && typeof l.msg === 'string'), 'every line is a JSON object with time, level, msg');
  t.ok(lines.some((l) => l.msg === 'client connected' && l.endpoint === 'default' && typeof l.client === 'string'), 'connects name the endpoint and client');
  const traced = (direction: string) => lines.filter((l) => l.level === 'trace' && l.msg === direction);
  t.same(traced('from-client').map((l) => l.message), ['{"execute":"qmp_capabilities"}', '{"execute":"query-name","id":"traced"}', '{"execute":"query-status","id":"second"}'], 'each message the client sent, one a line');
  t.ok(traced('from-client').every((l) => l.endpoint === 'default' && /^local#\d+$/.test(String(l.client))), 'with the endpoint and the client, as in other lines');
  t.same(traced('to-qemu').map((l) => l.message), ['{"execute":"query-name"}', '{"execute":"query-status"}'], 'what went to QEMU');
  const toClient = traced('to-client').map((l) => l.message);
  t.equal(toClient.length, 4, 'the greeting and three replies');
  t.match(toClient, [/^\{"QMP": /, '{"return": {}}', '{"return": {}, "id": "traced"}', /^\{"return": \{"status": "running".*\}, "id": "second"\}$/], 'each message to the client, one a line');
  t.ok(traced('from-qemu').every((l) => l.peer === 'qemu') && traced('from-qemu').length >= 2, 'and what QEMU sent');
});

t.test('--trace in text: the message ends the line as it was, not escaped again', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t);
  const sock = join(socketDir(t), 'm.sock');
  const run = runCli(t, ['--upstream', `unix:${qemu.monitors[0]}`, '--listen', `unix:${sock}`, '--trace']);
  await run.waitFor(/QEMU connected/);
  const c = await TestClient.connect(sock);
  await c.negotiate();
  await c.execute('query-name', undefined, 'a "quoted" id');
  await run.waitFor(/TRACE to-client .*a \\"quoted\\" id/);
  t.match(run.stderr(), /^\S+ TRACE to-client endpoint=default client=local#\d+ \{"return": \{\}, "id": "a \\"quoted\\" id"\}$/m);
  t.match(run.stderr(), /^\S+ TRACE from-client endpoint=default client=local#\d+ \{"execute":"query-name","id":"a \\"quoted\\" id"\}$/m);
});

t.test('a reply QEMU still owes an earlier connection is never taken for a new one', async (t) => {
  if (!needQemu(t)) return;
  const dir = socketDir(t);
  const qemu = await startQemu(t, { dir });
  const blocker = new MainLoopBlocker(dir);
  t.teardown(() => blocker.close());
  const first = await startMux(t, qemu.monitors[0]!, { timeouts: { shutdownMs: 50 } });
  const old = await TestClient.connect(first.path);
  await old.negotiate();
  old.send(blocker.command('old'));
  await blocker.untilBlocked(qemu.process.pid!);
  await first.stop();
  // A new qmp-mux on the same monitor numbers its commands from scratch.
  const second = await startMux(t, qemu.monitors[0]!);
  const fresh = await TestClient.connect(second.path);
  await eventually(() => second.mux.upstreamState === 'negotiating' && second.mux.describe().clients === 1, 'the new qmp-mux to negotiate with QEMU, the client waiting');
  t.equal(fresh.lines.length, 0, 'no greeting until qmp-mux has negotiated, which waits behind the blocked command');
  blocker.release();
  await fresh.negotiate();
  t.equal(await fresh.execute('query-name', undefined, 'new'), '{"return": {}, "id": "new"}', 'its own reply, not the old chardev-add one');
  t.ok(second.logs.some((l) => l.includes('QEMU sent message during negotiation')), 'the stale reply was seen and dropped');
  t.match(second.mux.describe().counters, { replyMismatches: 0 }, 'the stale reply was never taken for the negotiation\'s (which would then match nothing)');
  t.equal(count(second.logs, 'QEMU connected'), 1, 'one connection to QEMU all along');
  t.match(await fresh.execute('chardev-remove', { id: blocker.id }), /"return"/, 'the old command did run');
});
