import t, { type Test } from 'tap';
import { eventually } from '../fixtures/context.ts';
import { MainLoopBlocker } from '../fixtures/blocker.ts';
import { startMux } from '../fixtures/mux.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { TestClient } from '../fixtures/qmp-client.ts';
import { socketDir } from '../fixtures/tmp.ts';

/** Many clients through one qmp-mux in front of a real QEMU. */

async function setup(t: Test, options: { window?: number } = {}) {
  const dir = socketDir(t);
  const qemu = await startQemu(t, { dir });
  const mux = await startMux(t, qemu.monitors[0]!, options);
  const clients: TestClient[] = [];
  t.teardown(() => clients.forEach((c) => c.close()));
  const connect = async (negotiate: boolean | 'oob' = true): Promise<TestClient> => {
    const c = await TestClient.connect(mux.path);
    clients.push(c);
    if (negotiate) await c.negotiate(negotiate === 'oob');
    else await c.next();
    return c;
  };
  return { dir, qemu, mux, connect };
}

t.test('ids: clients using the same ids at the same time each get their own replies', async (t) => {
  if (!needQemu(t)) return;
  const { connect } = await setup(t);
  const topics = ['quit', 'stop', 'cont', 'info', 'help', 'system_reset', 'eject', 'change'];
  const clients = await Promise.all(topics.map(() => connect()));
  const rounds = 20;
  // Everyone uses the same ids 0..rounds-1, all at once.
  clients.forEach((c, i) => {
    for (let r = 0; r < rounds; r++) c.send(JSON.stringify({ execute: 'human-monitor-command', arguments: { 'command-line': `help ${topics[i]}` }, id: r }));
  });
  for (const [i, c] of clients.entries()) {
    for (let r = 0; r < rounds; r++) {
      const reply = JSON.parse(await c.nextReply()) as { return: string; id: number };
      t.equal(reply.id, r, `client ${i} reply ${r} in order`);
      t.match(reply.return, new RegExp(`^${topics[i]}\\b`), `client ${i} got help for ${topics[i]}`);
    }
  }
});

t.test('ids: any JSON value comes back as sent, none when none was sent', async (t) => {
  if (!needQemu(t)) return;
  const { connect } = await setup(t);
  const c = await connect();
  const ids = ['"s"', '-7', '{"k": [1, {"n": null}]}', '[true, false]', 'null', '""', '18446744073709551615', '-9223372036854775808'];
  for (const id of ids) {
    c.send(`{"execute":"query-status","id":${id}}`);
    t.match(await c.nextReply(), new RegExp(`, "id": ${id.replace(/[[\]{}]/g, '\\$&')}}$`), `id ${id}`);
  }
  c.send('{"execute":"query-status"}');
  t.notMatch(await c.nextReply(), /"id"/, 'no id when none was sent');
});

t.test('lossless: a 64-bit bandwidth set by one client reads back exactly through another', async (t) => {
  if (!needQemu(t)) return;
  const { connect } = await setup(t);
  const a = await connect();
  const b = await connect();
  for (const value of ['9007199254740993', '18446744073709551615', '9223372036854775809']) {
    a.send(`{"execute":"migrate-set-parameters","arguments":{"max-bandwidth":${value}},"id":"set"}`);
    t.equal(await a.nextReply(), '{"return": {}, "id": "set"}');
    b.send('{"execute":"query-migrate-parameters","id":"get"}');
    t.match(await b.nextReply(), new RegExp(`"max-bandwidth": ${value}[,}]`), `${value}: every digit survives`);
  }
});

t.test('events: to every negotiated client, same bytes, in order with replies; none before negotiation', async (t) => {
  if (!needQemu(t)) return;
  const { connect } = await setup(t);
  const a = await connect();
  const b = await connect();
  const late = await connect(false);
  a.send('{"execute":"stop","id":"s"}');
  t.match(await a.next(), /"event": "STOP"/, 'STOP before the return, as with QEMU');
  t.equal(await a.next(), '{"return": {}, "id": "s"}');
  const stopAtB = await b.next();
  t.equal(stopAtB, a.lines[a.lines.length - 2], 'the same bytes, timestamp included');
  late.send('{"execute":"qmp_capabilities"}');
  t.equal(await late.next(), '{"return": {}}', 'no STOP for a client that had not negotiated, and no replay');
  a.send('{"execute":"cont","id":"c"}');
  t.match(await a.next(), /"event": "RESUME"/);
  t.match(await b.next(), /"event": "RESUME"/);
  t.match(await late.next(), /"event": "RESUME"/, 'events after negotiation arrive');
});

t.test('pipelining: a client with 2,000 queued commands barely delays another; replies stay in order', async (t) => {
  if (!needQemu(t)) return;
  const { connect } = await setup(t);
  const busy = await connect();
  const quiet = await connect();
  const n = 2000;
  let burst = '';
  for (let i = 0; i < n; i++) burst += `{"execute":"query-status","id":${i}}`;
  busy.send(burst);
  await busy.waitLines(3 + 20); // greeting, negotiation, then the burst under way
  const before = busy.lines.length;
  quiet.send('{"execute":"query-name","id":"quiet"}');
  t.equal(await quiet.nextReply(), '{"return": {}, "id": "quiet"}');
  const during = busy.lines.length - before;
  t.ok(during < n / 4, `busy client got ${during} replies while the quiet one waited (not its whole queue)`);
  await busy.waitLines(2 + n);
  const ids = busy.lines.slice(2).map((l) => (JSON.parse(l) as { id: number }).id);
  t.same(ids, Array.from({ length: n }, (_, i) => i), 'busy client replies in its own order');
});

t.test('out-of-band: exec-oob overtakes in-band commands stuck behind a blocked main loop', async (t) => {
  if (!needQemu(t)) return;
  const { dir, connect, mux, qemu } = await setup(t);
  const blocker = new MainLoopBlocker(dir);
  t.teardown(() => blocker.close());
  const a = await connect('oob');
  const b = await connect();
  a.send(blocker.command('block'));
  await blocker.untilBlocked(qemu.process.pid!);
  // More in-band commands than QEMU queues: qmp-mux holds them, so QEMU keeps reading.
  for (let i = 0; i < 12; i++) b.send(`{"execute":"query-status","id":${i}}`);
  await eventually(() => mux.mux.listClients().some((c) => c.inFlight === 12), 'qmp-mux to hold the twelve in-band commands');
  a.send('{"exec-oob":"migrate-pause","id":"oob"}');
  t.match(await a.next(), /^\{"id": "oob", "error": \{"class": "GenericError", "desc": "migrate-pause is currently only supported during postcopy-active state"\}\}$/, 'answered while the main loop is blocked');
  t.equal(b.lines.length, 2, 'the in-band commands are still waiting');
  blocker.release();
  t.equal(await a.next(), '{"return": {}, "id": "block"}');
  await b.waitLines(2 + 12);
  t.same(b.lines.slice(2).map((l) => (JSON.parse(l) as { id: number }).id), [...Array(12).keys()]);
  t.equal(await a.execute('chardev-remove', { id: blocker.id }, 'rm'), '{"return": {}, "id": "rm"}');
});

t.test('disconnect mid-command: the late reply goes nowhere, others are undisturbed', async (t) => {
  if (!needQemu(t)) return;
  const { dir, connect, mux, qemu } = await setup(t);
  const blocker = new MainLoopBlocker(dir);
  t.teardown(() => blocker.close());
  const leaving = await connect();
  const leaver = mux.mux.listClients()[0]!.client;
  leaving.send(blocker.command('stale'));
  await blocker.untilBlocked(qemu.process.pid!);
  leaving.close();
  const b = await connect();
  b.send('{"execute":"query-name","id":"stale"}');
  await eventually(() => mux.mux.listClients().some((c) => c.client !== leaver && c.inFlight === 1), 'B\'s command to wait behind the leaver\'s');
  blocker.release();
  t.equal(await b.nextReply(), '{"return": {}, "id": "stale"}', 'B gets its own reply, not the leaver\'s with the same id');
  t.equal(await b.execute('chardev-remove', { id: blocker.id }, 1), '{"return": {}, "id": 1}', 'the leaver\'s command did run');
  t.equal(b.lines.length, 4, 'and B got nothing else');
  await eventually(() => mux.logs.some((l) => l.includes('client disconnected')), 'the leaver\'s disconnect logged');
});

t.test('half-close after the last command: every reply, then EOF', async (t) => {
  if (!needQemu(t)) return;
  const { connect } = await setup(t);
  const watcher = await connect();
  const oneShot = await connect(false);
  oneShot.send('{"execute":"qmp_capabilities"}{"execute":"stop"}{"execute":"cont"}{"execute":"query-status","id":"last"}');
  oneShot.endInput();
  const rest = await oneShot.rest();
  t.equal(rest.filter((l) => l.startsWith('{"return"')).length, 4, 'all four replies');
  t.match(rest.at(-1), /"id": "last"/);
  t.match(await watcher.next(), /"event": "STOP"/, 'the commands ran');
  t.match(await watcher.next(), /"event": "RESUME"/);
});

t.test('QEMU closes the monitor: everything it sent, then EOF, for every client', async (t) => {
  if (!needQemu(t)) return;
  const { connect, qemu } = await setup(t);
  const a = await connect();
  const b = await connect();
  a.send('{"execute":"quit","id":"q"}');
  const restA = await a.rest();
  const restB = await b.rest();
  t.match(restA[0], /"event": "SHUTDOWN"/);
  t.equal(restA[1], '{"return": {}, "id": "q"}');
  t.equal(restA.length, 2);
  t.same(restB.map((l) => l.includes('SHUTDOWN')), [true], 'the other client sees SHUTDOWN, then EOF');
  await qemu.exited;
});

t.test('isolation: garbage or half a message from one client does not touch another', async (t) => {
  if (!needQemu(t)) return;
  const { connect } = await setup(t);
  const noisy = await connect();
  const calm = await connect();
  noisy.send('{"execute":"query-status","id":"half');
  noisy.send(Buffer.from([0xff, 0xfe, 0x01]));
  noisy.send('{"execute":');
  for (let i = 0; i < 20; i++) {
    calm.send(`{"execute":"query-name","id":${i}}`);
    t.equal(await calm.nextReply(), `{"return": {}, "id": ${i}}`);
  }
  noisy.send('\x01{"execute":"query-name","id":"recovered"}');
  let line = '';
  for (let i = 0; i < 10 && !line.includes('"recovered"'); i++) line = await noisy.next();
  t.equal(line, '{"return": {}, "id": "recovered"}', 'the noisy client recovers as with QEMU');
});
