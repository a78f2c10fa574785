import t from 'tap';
import { runEvents } from '../../src/client/events.ts';
import { runExec } from '../../src/client/exec.ts';
import { QmpClient } from '../../src/client/qmp-client.ts';
import { connectRetrying } from '../../src/client/reconnect.ts';
import { runWaitReady } from '../../src/client/wait-ready.ts';
import { fakeIo } from '../fixtures/cli-io.ts';
import { FakeQemu } from '../fixtures/fake-qemu.ts';

/**
 * The clients' time limits mean what they say: a limit longer than a
 * Node timer can wait is refused rather than run out at once.
 */

const TOO_LONG = '3000000000';
const RUNNERS = { exec: runExec, events: runEvents, 'wait-ready': runWaitReady } as const;

t.test('a limit past 2147483647 ms is bad usage, naming the option; that one is taken', async (t) => {
  const silent = await FakeQemu.start(t, { greeting: ' ' });
  for (const [name, run] of Object.entries(RUNNERS)) {
    const io = fakeIo();
    t.equal(await run(['--connect', silent.path, '--timeout', TOO_LONG, 'query-name'].filter((a) => name === 'exec' || a !== 'query-name'), io), 2, `${name}: exit 2`);
    t.equal(io.err(), `qmp-mux ${name}: --timeout: at most 2147483647 ms (about 24.8 days), got '${TOO_LONG}'\ntry 'qmp-mux ${name} --help'\n`, `${name}: one line`);
  }
  for (const option of ['--lock-wait', '--lock-lease']) {
    const io = fakeIo();
    t.equal(await runExec(['--connect', silent.path, '--lock', 'write', option, TOO_LONG, 'query-name'], io), 2, option);
    t.match(io.err(), `${option}: at most 2147483647 ms`);
  }
  const longest = fakeIo();
  const before = silent.connections.length;
  const waiting = runExec(['--connect', silent.path, '--timeout', '2147483647', 'query-name'], longest);
  await silent.until(() => silent.connections.length > before);
  await new Promise((r) => setTimeout(r, 100));
  silent.connections[before]!.close();
  t.equal(await waiting, 3, 'the longest limit is taken: exec waited until the server went');
  t.equal(longest.err(), `qmp-mux exec: unix:${silent.path}: the server closed the connection\n`);
});

t.test('the library refuses such a delay at once with a RangeError naming it', async (t) => {
  const silent = await FakeQemu.start(t, { greeting: ' ' });
  const message = (option: string): string => `${option}: expected a number of milliseconds from 0 to 2147483647, got 3000000000`;
  // Without the check some would wait, or retry at once, for ever: the signal ends them with another error.
  const connect = (connectTimeout: number) => QmpClient.connect(silent.path, { signal: AbortSignal.timeout(1000), connectTimeout });
  await t.rejects(connect(3_000_000_000), { name: 'RangeError', message: message('connectTimeout') });
  for (const bad of [-1, NaN, Infinity]) await t.rejects(connect(bad), { name: 'RangeError' }, String(bad));
  const retry = (options: Parameters<typeof connectRetrying>[1]) => connectRetrying(silent.path, { signal: AbortSignal.timeout(1000), ...options });
  await t.rejects(retry({ connectTimeout: 3_000_000_000 }), { name: 'RangeError', message: message('connectTimeout') });
  await t.rejects(retry({ initialDelay: 3_000_000_000 }), { name: 'RangeError', message: message('initialDelay') });
  await t.rejects(retry({ maxDelay: 3_000_000_000 }), { name: 'RangeError', message: message('maxDelay') });
  t.equal(silent.connections.length, 0, 'before connecting');
});

t.test('--timeout 0 is no limit at all, the greeting included, in exec and events as in wait-ready', async (t) => {
  const silent = await FakeQemu.start(t, { greeting: ' ' });
  for (const [name, run] of [['exec', runExec], ['events', runEvents]] as const) {
    const io = fakeIo();
    const before = silent.connections.length;
    const running = run(['--connect', silent.path, '--timeout', '0', ...(name === 'exec' ? ['query-name'] : [])], io);
    await silent.until(() => silent.connections.length > before);
    await new Promise((r) => setTimeout(r, 200));
    silent.connections[before]!.close();
    t.equal(await running, 3, `${name}: still waiting for the greeting when the server went`);
    t.equal(io.err(), `qmp-mux ${name}: unix:${silent.path}: the server closed the connection\n`);
  }
  const fake = await FakeQemu.start(t);
  const io = fakeIo();
  t.equal(await runExec(['--connect', fake.path, '--timeout', '0', 'query-name'], io), 0);
  t.equal(io.out(), '{}\n', 'exec ran the command');
});

t.test('events: a --timeout longer than the default 10 s bounds the greeting too', async (t) => {
  const silent = await FakeQemu.start(t, { greeting: ' ' });
  const io = fakeIo();
  let ended = false;
  const running = runEvents(['--connect', silent.path, '--timeout', '15000'], io).finally(() => (ended = true));
  await new Promise((r) => setTimeout(r, 10_500));
  t.notOk(ended, 'still waiting for the greeting past 10 s');
  t.equal(io.err(), '');
  io.interrupt();
  t.equal(await running, 0, 'interrupted before the greeting');
});

t.test('wait-ready: a server that accepts and never greets is the reason given when the time is up', async (t) => {
  const silent = await FakeQemu.start(t, { greeting: ' ' });
  const io = fakeIo();
  t.equal(await runWaitReady(['--connect', silent.path, '--timeout', '300'], io), 4);
  t.equal(io.err(), `qmp-mux wait-ready: unix:${silent.path}: not ready within 300 ms (last: connected; the server has not greeted and negotiated yet)\n`);
  t.equal(silent.connections.length, 1, 'one attempt, still waiting');
});
