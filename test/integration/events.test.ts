import { join } from 'node:path';
import t from 'tap';
import { QmpClient } from '../../src/client/qmp-client.ts';
import { EVENTS_USAGE, runEvents as eventsCommand } from '../../src/client/events.ts';
import { runCli } from '../fixtures/cli.ts';
import { eventually, named, waitingFor } from '../fixtures/context.ts';
import { fakeIo, type FakeIo } from '../fixtures/cli-io.ts';
import { FakeQemu } from '../fixtures/fake-qemu.ts';
import { startMux } from '../fixtures/mux.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { socketDir } from '../fixtures/tmp.ts';

/** `qmp-mux events ARGS` in this process (a named wait). */
const runEvents = (args: string[], io: FakeIo): Promise<number> => waitingFor(`qmp-mux events ${args.join(' ')} to end`, eventsCommand(args, io));

const EVENT_LINE = (name: string): RegExp => new RegExp(`^\\{"timestamp":\\{"seconds":\\d+,"microseconds":\\d+\\},"event":"${name}"\\}$`);

t.test('events as JSON lines, directly and through qmp-mux; --count, names, --timeout, interrupt', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t, { monitors: 3 });
  const mux = await startMux(t, qemu.monitors[0]!);
  const actor = named('the client making events', await waitingFor('the client making events to connect', QmpClient.connect(qemu.monitors[2]!)));
  t.teardown(() => actor.close());
  for (const [how, address] of [['direct', `unix:${qemu.monitors[1]!}`], ['through qmp-mux', `unix:${mux.path}`]] as const) {
    const io = fakeIo();
    const running = runEvents(['--connect', address, '--count', '2'], io);
    await pauseAndResumeUntil(actor, running);
    t.equal(await running, 0, `${how}: --count ends it`);
    t.match(io.out().split('\n'), [/"event":"(STOP|RESUME)"/, /"event":"(STOP|RESUME)"/, ''], `${how}: one line per event`);
    t.match(io.out().split('\n')[0], EVENT_LINE('(STOP|RESUME)'), 'compact, as QEMU sent it');

    const named = fakeIo({ tty: true });
    const onlyResume = runEvents(['--connect', address, 'RESUME', '--count=1', '-p'], named);
    await pauseAndResumeUntil(actor, onlyResume);
    t.equal(await onlyResume, 0);
    t.match(named.out(), /^\{\n  "timestamp": \{[^]*\n  "event": "RESUME"\n\}\n$/, `${how}: only the events named, indented with -p`);

    const quiet = fakeIo();
    t.equal(await runEvents(['--connect', address, '--timeout', '100'], quiet), 0, `${how}: --timeout ends it with status 0`);
    t.equal(quiet.out(), '');

    const interrupted = fakeIo();
    const stopping = runEvents(['--connect', address], interrupted);
    setTimeout(() => interrupted.interrupt(), 100);
    t.equal(await stopping, 0, `${how}: SIGINT ends it with status 0`);
  }
});

/**
 * Stops and resumes the VM until `done` settles: the events client gives no
 * sign of having connected, so events are made until it has heard enough.
 */
async function pauseAndResumeUntil(actor: QmpClient, done: Promise<unknown>): Promise<void> {
  let settled = false;
  void done.finally(() => (settled = true));
  let rounds = 0;
  await waitingFor(
    () => `the events client to end, while the VM is stopped and resumed (${rounds} times so far)`,
    (async () => {
      for (; !settled; rounds++) {
        await actor.execute('stop');
        await actor.execute('cont');
        await new Promise((r) => setTimeout(r, 20));
      }
    })(),
  );
}

t.test('the connection ending is status 3; no greeting within --timeout is 4; usage is 2', async (t) => {
  const fake = await FakeQemu.start(t);
  const io = fakeIo();
  const running = runEvents(['--connect', fake.path], io);
  await fake.until(() => fake.received.length === 1);
  fake.emit('{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "SHUTDOWN", "data": {"guest": false, "big": 18446744073709551615}}\r\n');
  fake.connections[0]!.close();
  t.equal(await running, 3);
  t.equal(io.out(), '{"timestamp":{"seconds":1,"microseconds":2},"event":"SHUTDOWN","data":{"guest":false,"big":18446744073709551615}}\n', 'numbers as sent');
  t.equal(io.err(), `qmp-mux events: unix:${fake.path}: the server closed the connection\n`);

  const dir = socketDir(t);
  const none = fakeIo();
  t.equal(await runEvents(['--connect', join(dir, 'none.sock')], none), 3);
  t.equal(none.err(), `qmp-mux events: unix:${join(dir, 'none.sock')}: no such socket (ENOENT)\n`);
  const silent = await FakeQemu.start(t, { greeting: ' ' });
  const waiting = fakeIo();
  t.equal(await runEvents(['--connect', silent.path, '--timeout', '100'], waiting), 4);
  t.equal(waiting.err(), `qmp-mux events: unix:${silent.path}: no QMP greeting within 100 ms\n`);
  const interrupted = fakeIo();
  const connecting = runEvents(['--connect', silent.path], interrupted);
  await silent.until(() => silent.connections.length === 2);
  interrupted.interrupt();
  t.equal(await connecting, 0, 'interrupted before the greeting');

  for (const [args, message] of [[['--count', '0'], "--count: expected a whole number of at least 1, got '0'"], [['STOP', '{x}'], "'{x}' is not an event name"], [['--nope'], "unknown option '--nope'"]] as const) {
    const u = fakeIo();
    t.equal(await runEvents([...args], u), 2);
    t.equal(u.err(), `qmp-mux events: ${message}\ntry 'qmp-mux events --help'\n`);
  }
  const help = fakeIo();
  t.equal(await runEvents(['-h'], help), 0);
  t.equal(help.out(), EVENTS_USAGE);
});

t.test('a slow reader of the output slows the reading: every event arrives, in order', async (t) => {
  const fake = await FakeQemu.start(t);
  const io = fakeIo({ slow: true });
  const running = runEvents(['--connect', fake.path, '--count', '300'], io);
  await fake.until(() => fake.received.length === 1);
  const flood = Array.from({ length: 300 }, (_, i) => `{"timestamp": {"seconds": ${i}, "microseconds": 0}, "event": "E${i}"}\r\n`).join('');
  fake.emit(flood);
  t.equal(await running, 0);
  await eventually(() => io.out().split('\n').length > 300, () => `300 events written, with a slow reader of the output (${io.out().split('\n').length - 1} so far)`);
  const names = io.out().trim().split('\n').map((l) => (JSON.parse(l) as { event: string }).event);
  t.same(names, Array.from({ length: 300 }, (_, i) => `E${i}`));
});

t.test('--count N writes N events, however many more arrive with the last of them', async (t) => {
  const fake = await FakeQemu.start(t);
  const io = fakeIo();
  const running = runEvents(['--connect', fake.path, '--count', '2', 'E'], io);
  await fake.until(() => fake.received.length === 1);
  fake.emit(Array.from({ length: 5 }, (_, i) => `{"timestamp": {"seconds": ${i}, "microseconds": 0}, "event": "${i === 1 ? 'F' : 'E'}"}\r\n`).join(''));
  t.equal(await running, 0);
  t.same(io.out().trim().split('\n').map((l) => (JSON.parse(l) as { timestamp: { seconds: number } }).timestamp.seconds), [0, 2], 'the first two named, not the three after');
});

t.test('the real command: streams until --count', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t, { monitors: 2 });
  const run = runCli(t, ['events', '--connect', qemu.monitors[0]!, '--count', '1', 'STOP']);
  const actor = named('the client making events', await waitingFor('the client making events to connect', QmpClient.connect(qemu.monitors[1]!)));
  t.teardown(() => actor.close());
  await pauseAndResumeUntil(actor, run.exited);
  t.same(await run.exited, { code: 0, signal: null });
  t.match(run.stdout().trim(), EVENT_LINE('STOP'));
});
