import { readdirSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import t from 'tap';
import { CONNECTIONS_LOGGED } from '../../src/mux/connection-log.ts';
import { REFUSED_LINGERING } from '../../src/mux/intake.ts';
import { eventually } from '../fixtures/context.ts';
import { FakeQemu, replyTo } from '../fixtures/fake-qemu.ts';
import { startMux, type Mux } from '../fixtures/mux.ts';
import { TestClient } from '../fixtures/qmp-client.ts';

/**
 * Every connection qmp-mux decides to end is fully closed and forgotten
 * within a bounded time (`closeMs`), whatever the peer does. (tap's timeout
 * is the only clock: a connection never closed fails the file.)
 */

const CLOSE_MS = 300;
const openDescriptors = (): number => readdirSync('/proc/self/fd').length;
const logged = (mux: Mux, msg: string): number => mux.logs.filter((l) => l.includes(msg)).length;

/** A raw connection that never reads (its receive side paused) and never closes: it never even sees an EOF. */
function mute(t: { teardown(fn: () => void): void }, path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    socket.pause();
    socket.on('error', () => undefined);
    t.teardown(() => socket.destroy());
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

t.test('refused clients are released: counted, logged, closed, forgotten', async (t) => {
  const fake = await FakeQemu.start(t);
  const mux = await startMux(t, fake.path, { endpoints: [{ maxClients: 1 }], timeouts: { closeMs: CLOSE_MS } });
  const first = await TestClient.connect(mux.path);
  await first.negotiate();
  const before = openDescriptors();
  for (let i = 0; i < 20; i++) {
    const c = await TestClient.connect(mux.path);
    t.same(await c.rest(), ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"Too many clients on endpoint 'ep0' (at most 1)\"}}"], `refused ${i}`);
    c.close();
  }
  const mutes = await Promise.all(Array.from({ length: 20 }, () => mute(t, mux.path)));
  await eventually(() => logged(mux, 'client disconnected') === 40, 'refused peers that neither read nor close to be cut off after closeMs');
  for (const m of mutes) m.destroy();
  const state = JSON.parse(await first.execute('__org.qmp-mux_query-proxy')) as { return: { clients: number; counters: { disconnects: Record<string, number> } } };
  t.equal(state.return.clients, 1, 'only the one real client is counted');
  t.same(state.return.counters.disconnects, { 'too-many-clients': 40 });
  t.equal(logged(mux, 'client connected'), 41);
  await eventually(() => openDescriptors() <= before, () => `file descriptors back to ${before} (now ${openDescriptors()})`);
  const next = await TestClient.connect(mux.path);
  t.match(await next.rest(), [/Too many clients/], 'the endpoint is still full: the one client holds it');
  first.close();
  await eventually(() => mux.mux.describe().clients === 0, 'the first client to go');
  const after = await TestClient.connect(mux.path);
  t.match(await after.next(), /^\{"QMP"/, 'its place is free for the next');
});

t.test('refused connections kept open to be read are bounded: past REFUSED_LINGERING the oldest is closed, not after closeMs', async (t) => {
  const fake = await FakeQemu.start(t);
  const mux = await startMux(t, fake.path, { endpoints: [{ maxClients: 1 }], timeouts: { closeMs: 600_000 } });
  const first = await TestClient.connect(mux.path);
  await first.negotiate();
  const before = openDescriptors();
  const n = 20;
  const mutes: Socket[] = [];
  for (let i = 0; i < n; i++) mutes.push(await mute(t, mux.path));
  const cut = n - REFUSED_LINGERING;
  await eventually(() => logged(mux, 'client disconnected') === cut, () => `the ${cut} oldest refused connections to be closed (${logged(mux, 'client disconnected')} so far)`);
  t.equal(openDescriptors() - before, n + REFUSED_LINGERING, `the ${n} peers' ends, and qmp-mux's of the ${REFUSED_LINGERING} newest only`);
  const closed = mux.logs.filter((l) => l.includes('client disconnected')).map((l) => Number(/client=local#(\d+)/.exec(l)?.[1]));
  t.same(closed, Array.from({ length: cut }, (_, i) => closed[0]! + i), 'the oldest, in order');
  const state = JSON.parse(await first.execute('__org.qmp-mux_query-proxy')) as { return: { counters: { disconnects: Record<string, number> } } };
  t.same(state.return.counters.disconnects, { 'too-many-clients': cut });
  const read = await Promise.all(mutes.map((m) => new Promise<string>((resolve) => {
    let text = '';
    m.setEncoding('latin1');
    m.on('data', (d: string) => (text += d));
    m.once('end', () => resolve(text));
    m.resume();
  })));
  t.ok(read.every((r) => r === `{"error": {"class": "GenericError", "desc": "Too many clients on endpoint 'ep0' (at most 1)"}}\r\n`), 'each was told why, those closed early too');
});

t.test("a connect-and-close loop on one endpoint: its first CONNECTIONS_LOGGED connections are logged, both lines of each; another endpoint's still are", async (t) => {
  const fake = await FakeQemu.start(t);
  const mux = await startMux(t, fake.path, { endpoints: 2 });
  const n = CONNECTIONS_LOGGED + 30;
  for (let i = 0; i < n; i++) {
    const c = await TestClient.connect(mux.endpoints[0]!.address);
    await c.next();
    c.close();
  }
  const other = await TestClient.connect(mux.endpoints[1]!.address);
  await other.negotiate();
  await eventually(async () => {
    const state = JSON.parse(await other.execute('__org.qmp-mux_query-proxy')) as { return: { counters: { disconnects: Record<string, number> } } };
    return state.return.counters.disconnects.finished === n;
  }, `the ${n} connections to end`);
  const lines = (msg: string, endpoint: string): number => mux.logs.filter((l) => l.includes(`${msg} endpoint=${endpoint} `)).length;
  t.same([lines('client connected', 'ep0'), lines('client disconnected', 'ep0')], [CONNECTIONS_LOGGED, CONNECTIONS_LOGGED], 'the first ones, each arriving and leaving');
  t.equal(lines('client connected', 'ep1'), 1, 'the other endpoint has its own count');
  const first = /client=local#(\d+)/.exec(mux.logs.find((l) => l.includes('client connected endpoint=ep0'))!)![1];
  t.ok(mux.logs.some((l) => l.includes(`client disconnected endpoint=ep0 client=local#${first} `)), 'a connection logged arriving is logged leaving');
});

t.test('a client that never negotiates and never reads is closed within the bound', async (t) => {
  const fake = await FakeQemu.start(t);
  const mux = await startMux(t, fake.path, { endpoints: [{ negotiationTimeoutMs: 100 }], timeouts: { closeMs: CLOSE_MS } });
  await mute(t, mux.path);
  await eventually(() => logged(mux, 'did not negotiate in time') === 1, 'its disconnect, after the timeout and closeMs');
  t.equal(mux.mux.describe().clients, 0, 'forgotten');
});

t.test('stopping: clients that do not read what is owed them are cut off within the bound', async (t) => {
  const big = JSON.stringify('x'.repeat(256 * 1024));
  const fake = await FakeQemu.start(t, { respond: (_cmd, raw) => replyTo(raw, { return: big }) });
  const mux = await startMux(t, fake.path, { timeouts: { closeMs: CLOSE_MS, shutdownMs: 100 } });
  const c = await TestClient.connect(mux.path);
  await c.negotiate();
  c.socket.pause();
  for (let i = 0; i < 20; i++) c.send('{"execute":"query-big"}');
  await eventually(() => mux.mux.listClients()[0]!.bytesQueued > 1024 * 1024, 'megabytes of replies to pile up unread');
  await mux.stop();
  await eventually(() => mux.logs.some((l) => l.includes('client disconnected') && l.includes('qmp-mux stopping')), 'a full socket to be destroyed after closeMs');
  t.equal(mux.mux.describe().clients, 0, 'forgotten');
});

t.test('a refused client that reads its error and closes is forgotten at once, not after closeMs', async (t) => {
  const fake = await FakeQemu.start(t);
  // closeMs of a day: only noticing the peer's own close can release it before tap's timeout.
  const mux = await startMux(t, fake.path, { endpoints: [{ maxClients: 1 }], timeouts: { closeMs: 24 * 3600 * 1000 } });
  const first = await TestClient.connect(mux.path);
  await first.negotiate();
  for (let i = 0; i < 5; i++) {
    const c = await TestClient.connect(mux.path);
    await c.rest();
    c.close();
  }
  await eventually(() => logged(mux, 'client disconnected') === 5, 'the five to be forgotten');
  t.equal(logged(mux, 'too many clients on the endpoint'), 5);
});
