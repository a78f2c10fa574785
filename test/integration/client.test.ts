import { join } from 'node:path';
import t, { type Test } from 'tap';
import { QmpClient, type QmpEvent } from '../../src/client/qmp-client.ts';
import { connectRetrying } from '../../src/client/reconnect.ts';
import { formatVersion } from '../../src/client/client-session.ts';
import { TimeoutError } from '../../src/errors.ts';
import { JsonNumber } from '../../src/json/value.ts';
import { writeCompact } from '../../src/json/writer.ts';
import { eventually, named, waitingFor } from '../fixtures/context.ts';
import { GREETING_72, FakeQemu } from '../fixtures/fake-qemu.ts';
import { startMux } from '../fixtures/mux.ts';
import { listening } from '../fixtures/proc.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { socketDir } from '../fixtures/tmp.ts';

/** One QEMU with two monitors: one served by a qmp-mux in this process, one to use directly. */
async function routes(t: Test): Promise<{ how: string; path: string }[]> {
  const qemu = await startQemu(t, { monitors: 2 });
  const mux = await startMux(t, qemu.monitors[0]!);
  return [
    { how: 'direct', path: qemu.monitors[1]! },
    { how: 'through qmp-mux', path: mux.path },
  ];
}

/** The next `n` items of an iterator, then leaves it. */
async function take<T>(items: AsyncIterableIterator<T>, n: number): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) {
    out.push(item);
    if (out.length === n) break;
  }
  return out;
}

async function connect(t: Test, address: string): Promise<QmpClient> {
  const c = named(`the client of ${address}`, await waitingFor(`a client connected to ${address}`, QmpClient.connect(address)));
  t.teardown(() => c.close());
  return c;
}

t.test('commands, errors with their class, events, large integers: directly and through qmp-mux', async (t) => {
  if (!needQemu(t)) return;
  const [direct, viaMux] = await routes(t);
  for (const { how, path } of [direct!, viaMux!]) {
    const c = await connect(t, `unix:${path}`);
    t.equal(c.greeting.version.qemu.major, 7, `${how}: greeting`);
    t.match(formatVersion(c.greeting), /^7\.2\.\d+/);
    t.same(await c.execute('query-status'), { status: 'running', singlestep: false, running: true }, `${how}: a return value`);
    await t.rejects(c.execute('no-such-command'), { name: 'QmpError', errorClass: 'CommandNotFound', desc: 'The command no-such-command has not been found' }, `${how}: an error reply`);
    const untyped: string = 'query-name'; // its typed arguments would not let `bogus` compile
    await t.rejects(c.execute(untyped, { bogus: 1 }), { name: 'QmpError', errorClass: 'GenericError', desc: "Parameter 'bogus' is unexpected" });
    const many = await Promise.all(Array.from({ length: 20 }, () => c.execute('query-name')));
    t.equal(many.length, 20, `${how}: concurrent commands each get their reply`);

    await c.execute('migrate-set-parameters', { 'max-bandwidth': 18446744073709551615n });
    const params = (await c.execute('query-migrate-parameters')) as Record<string, unknown>;
    t.equal(params['max-bandwidth'], 18446744073709551615n, `${how}: uint64 max comes back as an exact bigint`);
    const raw = await c.executeJson('query-migrate-parameters');
    t.match(writeCompact(raw).text, /"max-bandwidth":18446744073709551615[,}]/, `${how}: and as exact text`);
    await c.executeJson('migrate-set-parameters', new Map([['max-bandwidth', new JsonNumber('9223372036854775808', true)]]));
    t.equal(((await c.execute('query-migrate-parameters')) as Record<string, unknown>)['max-bandwidth'], 9223372036854775808n);
    await c.execute('migrate-set-parameters', { 'max-bandwidth': 134217728 });
    await c.close();
  }

  const a = await connect(t, `unix:${direct!.path}`);
  const b = await connect(t, `unix:${viaMux!.path}`);
  const heard: string[] = [];
  b.on('event', (e: QmpEvent) => heard.push(e.event));
  const stream = a.events();
  const bStream = b.events();
  await b.execute('stop');
  await a.execute('cont');
  const seen = await take(stream, 2);
  t.same(seen.map((e) => e.event), ['STOP', 'RESUME'], 'the iterator sees events caused by another client');
  await take(bStream, 2);
  t.ok(seen[0]!.timestamp.seconds > 1_600_000_000 && seen[0]!.timestamp.microseconds >= 0, 'with their timestamp');
  t.same(seen[0]!.data, {});
  t.equal(seen[0]!.json.get('event'), 'STOP', 'and as received');
  t.same(heard, ['STOP', 'RESUME'], 'the listener too, through qmp-mux');
});

t.test("a pretty=on monitor's multi-line output", async (t) => {
  if (!needQemu(t)) return;
  const dir = socketDir(t);
  const path = join(dir, 'pretty.sock');
  await startQemu(t, { monitors: 0, dir, args: ['-chardev', `socket,id=p,path=${path},server=on,wait=off`, '-mon', 'chardev=p,mode=control,pretty=on'] });
  await eventually(() => listening(path), `QEMU to listen on ${path}`);
  const c = await connect(t, path);
  t.same(await c.execute('query-status'), { status: 'running', singlestep: false, running: true });
  t.same(await c.execute('query-name'), {}, 'an empty object spans two lines there');
});

t.test('the connection ending: QEMU quits, commands waiting reject, iterators end with the error', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t);
  const c = await connect(t, qemu.monitors[0]!);
  const events = c.events();
  const closed = new Promise((resolve) => c.once('close', resolve));
  await c.execute('quit');
  const error = await c.done;
  t.match(error, { name: 'ConnectionError', code: 'QMPMUX_CONNECTION', message: /the server closed the connection$/ });
  t.equal(await closed, error, "'close' carries the same error");
  t.equal((await events.next()).value?.event, 'SHUTDOWN', 'events before the end are still read');
  await t.rejects(events.next(), { name: 'ConnectionError' });
  await t.rejects(c.execute('query-status'), { name: 'ConnectionError', message: 'the connection is closed' });
  const late = c.events();
  await t.rejects(late.next(), { name: 'ConnectionError' }, 'an iterator made afterwards ends at once');
});

t.test('close(): waiting commands reject, done resolves undefined, iterators end quietly', async (t) => {
  const fake = await FakeQemu.start(t, { respond: () => undefined });
  const c = await QmpClient.connect(fake.path);
  const pending = t.rejects(c.execute('never-answered'), { name: 'ConnectionError', message: /the client closed the connection$/ });
  const events = c.events();
  await c.close();
  await pending;
  t.equal(await c.done, undefined);
  t.same(await events.next(), { value: undefined, done: true });
  t.same(await c.events().next(), { value: undefined, done: true });
  await c.close();
  t.pass('closing twice is harmless');
});

t.test('connection failures name the address and the cause', async (t) => {
  const dir = socketDir(t);
  await t.rejects(QmpClient.connect(`unix:${join(dir, 'none.sock')}`), { name: 'ConnectionError', message: `unix:${join(dir, 'none.sock')}: no such socket (ENOENT)` });
  await t.rejects(QmpClient.connect({ type: 'tcp', host: '127.0.0.1', port: 1 }), { name: 'ConnectionError', message: 'tcp:127.0.0.1:1: connection refused (nothing is listening there) (ECONNREFUSED)' });
  await t.rejects(QmpClient.connect(`unix:${dir}`), { name: 'ConnectionError', message: `unix:${dir}: not a socket (a directory) (ECONNREFUSED)` }, 'a directory is refused as if nobody listened');
  await t.rejects(QmpClient.connect('tcp:nonsense'), { name: 'AddressError' });
  const silent = await FakeQemu.start(t, { greeting: ' ' });
  await t.rejects(QmpClient.connect(silent.path, { connectTimeout: 100 }), { name: 'TimeoutError', code: 'QMPMUX_TIMEOUT', message: `unix:${silent.path}: no QMP greeting within 100 ms` });
  const notQmp = await FakeQemu.start(t, { greeting: '{"hello": "world"}' });
  await t.rejects(QmpClient.connect(notQmp.path), { name: 'ProtocolError', message: 'expected a QMP greeting, got {"hello":"world"}' });
  const garbage = await FakeQemu.start(t, { greeting: 'SSH-2.0-OpenSSH' });
  await t.rejects(QmpClient.connect(garbage.path), { name: 'ProtocolError', message: /unreadable message from the server: JSON parse error/ });
});

t.test('aborting: before the greeting, and with a reason of our own', async (t) => {
  const silent = await FakeQemu.start(t, { greeting: ' ' });
  const controller = new AbortController();
  const connecting = QmpClient.connect(silent.path, { signal: controller.signal, connectTimeout: 0 });
  await silent.until(() => silent.connections.length === 1);
  controller.abort();
  await t.rejects(connecting, { name: 'ConnectionError', message: `unix:${silent.path}: aborted` });
  await t.rejects(QmpClient.connect(silent.path, { signal: AbortSignal.abort(new TimeoutError('ours')) }), { name: 'TimeoutError', message: 'ours' }, 'an already aborted signal');
  const fake = await FakeQemu.start(t);
  const ready = new AbortController();
  const c = await QmpClient.connect(fake.path, { signal: ready.signal });
  ready.abort(new TimeoutError('run out'));
  t.match(await c.done, { name: 'TimeoutError', message: 'run out' }, 'aborting a connected client closes it with the reason');
});

t.test("a fake server: QEMU's inf, stray replies, events without data, a refusal", async (t) => {
  const fake = await FakeQemu.start(t, {
    respond: (cmd, raw, conn) => {
      const id = /"id":(\d+)/.exec(raw)?.[1];
      if (cmd.execute === 'stray') conn.write('{"return": {}, "id": "not-ours"}\r\n');
      if (cmd.execute === 'event') conn.write('{"event": "ODD", "timestamp": "no"}\r\n{"event": 5}\r\n');
      return `{"return": {"rate": inf, "low": -inf, "nan": nan, "ok": 1.5}, "id": ${id}}`;
    },
  });
  const c = await connect(t, fake.path);
  const values = (await c.execute('query-inf')) as Record<string, number>;
  t.same([values.rate, values.low, values.ok], [Infinity, -Infinity, 1.5]);
  t.ok(Number.isNaN(values.nan));
  t.equal(writeCompact(await c.executeJson('query-inf')).text, '{"rate":inf,"low":-inf,"nan":nan,"ok":1.5}', 'the raw form keeps the tokens');
  const strays: string[] = [];
  c.on('stray', (m) => strays.push(writeCompact(m).text));
  t.same(await c.execute('stray'), { rate: Infinity, low: -Infinity, nan: NaN, ok: 1.5 }, 'the reply with our id still comes');
  t.same(strays, ['{"return":{},"id":"not-ours"}']);
  const events: QmpEvent[] = [];
  c.on('event', (e) => events.push(e));
  await c.execute('event');
  t.same(events.map((e) => [e.event, e.data, e.timestamp]), [['ODD', {}, { seconds: -1, microseconds: -1 }]], 'missing parts get defaults');
  t.same(strays.slice(1), ['{"event":5}'], 'an event without a name is stray');

  const refusing = await FakeQemu.start(t, { greeting: '{"error": {"class": "GenericError", "desc": "Too many clients"}}' });
  await t.rejects(QmpClient.connect(refusing.path), { name: 'ConnectionError', message: 'refused: GenericError: Too many clients' });
});

t.test('TCP, and a refusal by qmp-mux over its client limit', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t);
  const mux = await startMux(t, qemu.monitors[0]!, { endpoints: [{ address: { type: 'tcp', host: '127.0.0.1', port: 0 }, maxClients: 1 }] });
  const address = mux.endpoints[0]!.address;
  const c = await connect(t, address.type === 'tcp' ? `tcp:127.0.0.1:${address.port}` : '');
  t.same(await c.execute('query-status'), { status: 'running', singlestep: false, running: true });
  await t.rejects(QmpClient.connect(address), { name: 'ConnectionError', message: /refused: GenericError: Too many clients on endpoint 'ep0' \(at most 1\)/ });
});

t.test('QEMU restarting behind qmp-mux: the client sees the end, connectRetrying gets the new QEMU', async (t) => {
  if (!needQemu(t)) return;
  const dir = socketDir(t);
  const first = await startQemu(t, { dir, names: ['qemu.sock'], args: ['-name', 'first'] });
  const mux = await startMux(t, first.monitors[0]!);
  const c = await connect(t, mux.path);
  t.same(await c.execute('query-name'), { name: 'first' });
  await first.stop();
  t.match(await c.done, { name: 'ConnectionError' }, 'qmp-mux ends its clients when QEMU goes');
  const failures: string[] = [];
  const retrying = connectRetrying(mux.path, { initialDelay: 20, maxDelay: 100, onRetry: (e) => failures.push(e.code) });
  await startQemu(t, { dir, names: ['qemu.sock'], args: ['-name', 'second'] });
  const again = await retrying;
  t.teardown(() => again.close());
  t.same(await again.execute('query-name'), { name: 'second' }, 'greeted by the new QEMU');
  t.ok(failures.every((code) => code === 'QMPMUX_CONNECTION' || code === 'QMPMUX_TIMEOUT'), `failed attempts: ${failures.join(', ') || 'none'}`);
});

t.test('connectRetrying: retries until the server is there, gives up when told', async (t) => {
  const dir = socketDir(t);
  const path = join(dir, 'later.sock');
  const failures: string[] = [];
  const retrying = connectRetrying(path, { initialDelay: 10, maxDelay: 40, onRetry: (e, attempt) => failures.push(`${attempt}:${e.code}`) });
  await eventually(() => failures.length >= 2, 'two failed attempts');
  await FakeQemu.startAt(t, path, { greeting: GREETING_72 });
  const c = await waitingFor('connectRetrying to connect once the server is there', retrying);
  t.teardown(() => c.close());
  t.ok(failures.length >= 2, `${failures.length} failed attempts first`);
  t.equal(failures[0], '1:QMPMUX_CONNECTION');
  const stop = new AbortController();
  const giving = connectRetrying(join(dir, 'never.sock'), { initialDelay: 10, signal: stop.signal });
  setTimeout(() => stop.abort(), 50);
  await t.rejects(giving, { name: 'ConnectionError', code: 'QMPMUX_CONNECTION', message: `unix:${join(dir, 'never.sock')}: aborted` }, 'between attempts: what connect rejects with');
  await t.rejects(connectRetrying(join(dir, 'never.sock'), { signal: AbortSignal.abort() }), { name: 'ConnectionError', message: /: aborted$/ }, 'already aborted');
  await t.rejects(connectRetrying(join(dir, 'never.sock'), { signal: AbortSignal.abort(new TimeoutError('late')) }), { name: 'TimeoutError', message: 'late' }, 'with a reason of ours');
  const silent = await FakeQemu.start(t, { greeting: ' ' });
  const midAttempt = new AbortController();
  const tries: number[] = [];
  const waiting = connectRetrying(silent.path, { connectTimeout: 0, signal: midAttempt.signal, onRetry: (_e, n) => tries.push(n) });
  await silent.until(() => silent.connections.length === 1);
  midAttempt.abort(new TimeoutError('enough'));
  await t.rejects(waiting, { name: 'TimeoutError', message: 'enough' }, 'aborting during an attempt ends it with the reason');
  t.same(tries, [], 'and is no failed attempt');
  await t.rejects(connectRetrying('tcp:bad', {}), { name: 'AddressError' }, 'a bad address is not retried');
});

t.test('events that come before connect resolves reach listeners added right after it', async (t) => {
  const early = '{"timestamp": {"seconds": 1, "microseconds": 0}, "event": "EARLY"}';
  const fake = await FakeQemu.start(t, {
    greeting: `${GREETING_72}\r\n${early}`,
    respond: (_cmd, raw) => `{"return": {}, "id": ${/"id":(\d+)/.exec(raw)?.[1]}}`,
  });
  const c = await connect(t, fake.path);
  const heard: string[] = [];
  c.on('event', (e) => heard.push(e.event));
  const stream = c.events();
  fake.emit('{"timestamp": {"seconds": 2, "microseconds": 0}, "event": "LATER"}\r\n{"timestamp": {"seconds": 3, "microseconds": 0}, "event": "LAST"}\r\n');
  t.same((await take(stream, 2)).map((e) => e.event), ['EARLY', 'LATER'], 'the event sent with the greeting first');
  t.same(heard.slice(0, 2), ['EARLY', 'LATER']);
  const flooding = await FakeQemu.start(t, { greeting: `${GREETING_72}\r\n${`${early}\r\n`.repeat(10001)}` });
  await t.rejects(QmpClient.connect(flooding.path), { name: 'ProtocolError', message: /more than 10000 events before negotiation completed$/ });
});
