import t, { type Test } from 'tap';
import { Dialer } from '../../src/upstream/dial-source.ts';
import { elapse, eventually } from '../fixtures/context.ts';
import { FakeQemu, GREETING_72, replyTo } from '../fixtures/fake-qemu.ts';
import { startMux, type Mux, type MuxOptions } from '../fixtures/mux.ts';
import { TestClient } from '../fixtures/qmp-client.ts';

/** qmp-mux against a fake QEMU: what reaches the upstream, and upstream faults. */

const NEGOTIATION = /^\{"execute":"qmp_capabilities","arguments":\{"enable":\["oob"\]\},"id":"qmp-mux:\d+:[0-9a-f]{12}"\}$/;
/** What the fake (reading latin1) sees of UTF-8 text. */
const asReceived = (text: string): string => Buffer.from(text, 'utf8').toString('latin1');
const clients = (mux: Mux): number => mux.mux.describe().clients;

/** A qmp-mux dialing, quickly and again, a socket path where no QEMU is yet; `FakeQemu.startAt(t, path)` brings one. */
async function muxBeforeQemu(t: Test, options: MuxOptions = {}): Promise<{ mux: Mux; path: string }> {
  const fake = await FakeQemu.start(t);
  await fake.close();
  const mux = await startMux(t, fake.path, { backoff: { initialMs: 10, maxMs: 20 }, ...options });
  return { mux, path: fake.path };
}

t.test('what reaches QEMU is qmp-mux\'s own serialization of what it validated', async (t) => {
  const fake = await FakeQemu.start(t);
  const mux = await startMux(t, fake.path);
  const c = await TestClient.connect(mux.path);
  await c.negotiate();
  c.send("{'execute': 'qu\\u0069t', 'arguments': {'size': 18446744073709551615, 's': 'it\\'s \\u00e9', 'neg': -9223372036854775808, 'f': 1E2}, 'id': 5}");
  t.equal(await c.nextReply(), '{"return": {}, "id": 5}');
  const [negotiation, sent] = fake.received as [string, string];
  t.match(negotiation, NEGOTIATION, 'qmp-mux negotiates with an id unique to the connection');
  t.equal(sent, asReceived('{"execute":"quit","arguments":{"size":18446744073709551615,"s":"it\'s é","neg":-9223372036854775808,"f":1E2}}'), 'compact, raw UTF-8, every digit, and no id');
});

t.test('invalid input never reaches QEMU', async (t) => {
  const fake = await FakeQemu.start(t);
  const mux = await startMux(t, fake.path);
  const c = await TestClient.connect(mux.path);
  await c.next();
  const invalid = [
    '{"execute":"query-status","id":1}', // before negotiation
    '{"execute":"qmp_capabilities"}',
    '{"execute":"qmp_capabilities","id":2}', // already negotiated
    '{"exec-oob":"query-status","id":3}', // oob not enabled
    '{"execute":"query-status","exec-oob":"x"}',
    '{"execute":1}', '{}', '[]', '"x" ', '{"execute":"x","foo":1}', '{"execute":"x","arguments":[]}',
    '{"execute":"a","execute":"b"}', "{'execute':'x',}", '{"execute":"x\x01"}', '\xff', '[' + '['.repeat(1100),
  ];
  for (const text of invalid) c.send(text);
  c.send('\x01{"execute":"query-name","id":"valid"}');
  let line = '';
  for (let i = 0; i < 1200 && !line.includes('"valid"'); i++) line = await c.next();
  t.equal(line, '{"return": {}, "id": "valid"}');
  t.equal(fake.received.length, 2, 'only qmp-mux\'s negotiation and the one valid command');
  t.equal(fake.received[1], '{"execute":"query-name"}');
});

t.test('QEMU closing in the middle of a message: clients get what came before, then EOF', async (t) => {
  const fake = await FakeQemu.start(t, { respond: () => undefined });
  const mux = await startMux(t, fake.path);
  const a = await TestClient.connect(mux.path);
  const b = await TestClient.connect(mux.path);
  await a.negotiate();
  await b.negotiate();
  a.send('{"execute":"query-status","id":"pending"}');
  await fake.until(() => fake.received.length === 2);
  t.equal(fake.received[1], '{"execute":"query-status"}', 'the command reached QEMU');
  fake.emit('{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}\r\n{"return": {"status": "pa');
  fake.connections[0]!.socket.destroy();
  t.same(await a.rest(), ['{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}'], 'the event, no partial reply, then EOF');
  t.same(await b.rest(), ['{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}']);
  t.same(a.framingErrors, []);
});

t.test('event flood: every reading client gets every event in order; a client that never reads is cut off', async (t) => {
  const fake = await FakeQemu.start(t);
  const mux = await startMux(t, fake.path, { limits: { maxOutputBuffer: 256 * 1024 } });
  const readers = await Promise.all(Array.from({ length: 5 }, () => TestClient.connect(mux.path)));
  for (const r of readers) await r.negotiate();
  const sleeper = await TestClient.connect(mux.path);
  await sleeper.negotiate();
  sleeper.socket.pause();
  const n = 20000;
  let batch = '';
  for (let i = 0; i < n; i++) {
    batch += `{"timestamp": {"seconds": 1, "microseconds": ${i}}, "event": "FLOOD", "data": {"n": ${i}, "pad": "${'x'.repeat(64)}"}}\r\n`;
    if (batch.length > 64 * 1024) {
      fake.emit(batch);
      batch = '';
    }
  }
  fake.emit(batch);
  for (const r of readers) await r.waitLines(2 + n);
  for (const [i, r] of readers.entries()) {
    const seq = r.lines.slice(2).map((l) => Number(/"n": (\d+)/.exec(l)?.[1]));
    t.ok(seq.every((v, j) => v === j) && seq.length === n, `reader ${i}: all ${n} events, in order`);
  }
  const cutOff = await eventually(() => mux.logs.map((l) => /client disconnected .*reason="not reading its output \((\d+) bytes buffered\)"/.exec(l)).find((m) => m), 'the sleeper\'s disconnect logged, with why');
  const buffered = Number(cutOff[1]);
  t.ok(buffered > 256 * 1024 && buffered <= 256 * 1024 + 128 * 1024, `the sleeper was cut off as its output passed the limit (${buffered} bytes buffered, at most one read of QEMU's past 256 KiB)`);
  sleeper.socket.resume();
  await sleeper.rest();
  t.ok(sleeper.lines.length < 2 + n, `the sleeper got ${sleeper.lines.length - 2} events, then EOF`);
});

t.test('malformed and unexpected output from QEMU is logged and skipped', async (t) => {
  const fake = await FakeQemu.start(t, { respond: () => undefined });
  const mux = await startMux(t, fake.path);
  const c = await TestClient.connect(mux.path);
  await c.negotiate();
  c.send('{"execute":"query-status","id":"mine"}');
  await fake.until(() => fake.received.length === 2);
  fake.emit('garbage line\r\n{"what": "is this"}\r\n{"QMP": {}}\r\n');
  fake.emit('{"return": {"status": "running"}}\r\n');
  t.equal(await c.next(), '{"return": {"status": "running"}, "id": "mine"}', 'the reply arrives, with the client\'s id');
  // Whatever qmp-mux made of what QEMU sent would be ahead of the answer to a command it answers itself.
  t.match(await c.execute('__org.qmp-mux_query-proxy', undefined, 'barrier'), /"id": "barrier"/, 'and nothing else');
  t.equal(c.lines.length, 4);
  t.ok(mux.logs.some((l) => l.includes('unexpected message from QEMU')));
  t.ok(mux.logs.some((l) => l.includes('bytes outside any message')));
  t.equal(fake.connections.length, 1, 'none of that is a reason to reconnect');
});

/**
 * A fake QEMU whose replies stop matching what qmp-mux sent (`fault`
 * answers each command on the first connection; later connections answer
 * normally), behind a qmp-mux with clients `a` and `b`, which send one
 * command each when named in `senders`, and `idle`, which sends nothing.
 */
async function mismatch(t: Test, senders: ('a' | 'b')[], fault: (raw: string, n: number) => string) {
  let n = 0;
  const fake: FakeQemu = await FakeQemu.start(t, { respond: (_cmd, raw, conn) => (conn === fake.connections[0] ? fault(raw, n++) : replyTo(raw, { return: '"fresh"' })) });
  const mux = await startMux(t, fake.path, { backoff: { initialMs: 10, maxMs: 20 } });
  const clientsByName = { a: await TestClient.connect(mux.path), b: await TestClient.connect(mux.path), idle: await TestClient.connect(mux.path) };
  for (const c of Object.values(clientsByName)) await c.negotiate();
  for (const name of senders) clientsByName[name].send(`{"execute":"query-${name}","id":"${name}"}`);
  return { fake, mux, ...clientsByName };
}

/** What every mismatch must lead to: logged, the upstream made again, the clients with commands in flight ended, the others carrying on. */
async function afterMismatch(t: Test, setup: Awaited<ReturnType<typeof mismatch>>, why: string, lost: TestClient[]): Promise<void> {
  const { fake, mux, idle } = setup;
  await fake.until(() => fake.connections.length === 2);
  t.ok(mux.logs.some((l) => l.includes("QEMU's replies no longer match the commands in flight; reconnecting to QEMU") && l.includes(why)), `logged: ${why}`);
  t.ok(fake.connections[0]!.socket.destroyed, 'the old connection was dropped');
  for (const c of lost) t.same(await c.rest(), [], 'a client whose command was in flight gets no reply at all (none can be trusted), then EOF');
  if (lost.length > 0) await eventually(() => mux.logs.some((l) => l.includes('client disconnected') && l.includes("QEMU's replies stopped matching")), 'the disconnects logged, with why');
  t.equal(await idle.execute('query-x', undefined, 'after'), '{"return": "fresh", "id": "after"}', 'a client with nothing in flight carries on, over the new connection');
  t.match(mux.mux.describe().counters, { replyMismatches: 1 });
}

t.test('a reply when none is owed: qmp-mux reconnects rather than guess', async (t) => {
  const setup = await mismatch(t, ['a'], (raw) => `${replyTo(raw, { return: '"for a"' })}\r\n${replyTo(raw, { return: '"extra"' })}`);
  t.equal(await setup.a.next(), '{"return": "for a", "id": "a"}', 'a gets its reply');
  await afterMismatch(t, setup, 'a reply when none was owed', []);
  t.equal(await setup.a.execute('query-y', undefined, 'again'), '{"return": "fresh", "id": "again"}', 'and, with nothing in flight when it came, carries on too');
  t.equal(setup.a.lines.filter((l) => l.includes('extra')).length, 0, 'the extra reply went to nobody');
});

t.test('a reply replaced by errors of QEMU\'s reader (a command it could not read): qmp-mux reconnects', async (t) => {
  const setup = await mismatch(t, ['a', 'b'], (_raw, n) =>
    n === 0 ? '{"error": {"class": "GenericError", "desc": "JSON token size limit exceeded"}}\r\n{"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}}' : '{"return": "for b"}',
  );
  await afterMismatch(t, setup, 'an error QEMU reports only for input it could not read', [setup.a, setup.b]);
});

t.test('a reply with an id qmp-mux did not give: qmp-mux reconnects', async (t) => {
  const setup = await mismatch(t, ['a', 'b'], () => '{"return": {}, "id": 999}');
  await afterMismatch(t, setup, 'a reply with an id qmp-mux did not give', [setup.a, setup.b]);
});

t.test('pretty-printing QEMU: clients get the compact form', async (t) => {
  const pretty = (text: string) => text.replace(/\r\n/g, '\n').replace(/\n/g, '\r\n');
  const fake = await FakeQemu.start(t, {
    greeting: pretty('{\n    "QMP": {\n        "version": {\n            "qemu": {\n                "micro": 22,\n                "minor": 2,\n                "major": 7\n            },\n            "package": ""\n        },\n        "capabilities": [\n            "oob"\n        ]\n    }\n}'),
    respond: () => pretty('{\n    "return": {\n        "status": "running",\n        "e": {\n        }\n    }\n}'),
  });
  const mux = await startMux(t, fake.path);
  const c = await TestClient.connect(mux.path);
  t.equal(await c.next(), '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}');
  c.send('{"execute":"qmp_capabilities"}{"execute":"query-status","id":1}');
  t.equal(await c.next(), '{"return": {}}');
  t.equal(await c.next(), '{"return": {"status": "running", "e": {}}, "id": 1}');
  t.same(c.framingErrors, []);
});

t.test('capabilities offered are those of QEMU that qmp-mux supports', async (t) => {
  const noOob = await FakeQemu.start(t, { greeting: GREETING_72.replace('["oob"]', '[]') });
  const mux = await startMux(t, noOob.path);
  const c = await TestClient.connect(mux.path);
  t.match(await c.next(), /"capabilities": \[\]\}\}$/);
  c.send('{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}');
  t.equal(await c.next(), '{"error": {"class": "GenericError", "desc": "Capability oob not available"}}');
  t.match(noOob.received[0], /^\{"execute":"qmp_capabilities","id":/, 'qmp-mux enables nothing QEMU did not offer');

  const future = await FakeQemu.start(t, { greeting: GREETING_72.replace('["oob"]', '["oob", "x-future"]') });
  const mux2 = await startMux(t, future.path);
  const c2 = await TestClient.connect(mux2.path);
  t.equal(await c2.next(), GREETING_72, 'capabilities qmp-mux does not know are not offered');
  t.match(future.received[0], /"enable":\["oob"\]/);
});

t.test('never more than the window in flight to QEMU', async (t) => {
  const fake = await FakeQemu.start(t, { hold: true });
  const mux = await startMux(t, fake.path, { window: 7 });
  const clients = await Promise.all(Array.from({ length: 8 }, () => TestClient.connect(mux.path)));
  for (const c of clients) await c.negotiate();
  clients.forEach((c, i) => {
    for (let j = 0; j < 30; j++) c.send(`{"execute":"query-status","arguments":{"c":${i},"j":${j}},"id":[${i},${j}]}`);
  });
  await fake.until(() => fake.held.length === 7);
  await elapse(100);
  t.equal(fake.held.length, 7, 'seven in flight, the rest wait in qmp-mux');
  const turn = (raw: string): string => /"c":(\d+),"j":(\d+)/.exec(raw)!.slice(1).join('/');
  fake.release();
  await fake.until(() => fake.held.length === 7);
  const perClient = clients.map((_, c) => fake.held.filter((h) => turn(h.raw).startsWith(`${c}/`)).length);
  t.ok(perClient.every((k) => k <= 1), `with all eight waiting, the next seven go in turns, one of each client's at most: ${perClient.join(', ')} per client`);
  let answered = 7;
  while (answered < 240) {
    const n = fake.held.length;
    fake.release();
    answered += n;
    if (answered < 240) await fake.until(() => fake.held.length > 0);
    t.ok(fake.held.length <= 7, 'window holds');
  }
  for (const [i, c] of clients.entries()) {
    await c.waitLines(2 + 30);
    t.same(c.lines.slice(2).map((l) => (JSON.parse(l) as { id: number[] }).id), Array.from({ length: 30 }, (_, j) => [i, j]), `client ${i} in order`);
  }
});

t.test('a client connecting before QEMU is up waits for its greeting', async (t) => {
  const { mux, path } = await muxBeforeQemu(t);
  const c = await TestClient.connect(mux.path);
  await eventually(() => clients(mux) === 1, 'qmp-mux to take the client in');
  t.equal(c.lines.length, 0, 'no greeting without QEMU');
  const fake2 = await FakeQemu.startAt(t, path);
  t.equal(await c.next(), GREETING_72);
  c.send('{"execute":"qmp_capabilities","id":1}{"execute":"query-status","id":2}');
  t.equal(await c.next(), '{"return": {}, "id": 1}');
  t.equal(await c.next(), '{"return": {}, "id": 2}');
  t.equal(fake2.received.length, 2);
});

t.test('a failing step before a retry is logged and the retry goes ahead', async (t) => {
  const fake = await FakeQemu.start(t);
  await fake.close();
  let calls = 0;
  const beforeRetry = async (): Promise<void> => {
    if (++calls === 1) throw new Error('boom');
  };
  const mux = await startMux(t, fake.path, { source: (log) => new Dialer({ address: { type: 'unix', path: fake.path }, backoff: { initialMs: 10, maxMs: 20 }, log, beforeRetry }) });
  const c = await TestClient.connect(mux.path);
  await eventually(() => calls >= 2, 'a second retry');
  await FakeQemu.startAt(t, fake.path);
  t.equal(await c.next(), GREETING_72, 'QEMU found all the same');
  t.ok(mux.logs.some((l) => l.includes('preparing to dial QEMU failed') && l.includes('boom')));
});

t.test('a client that gives up waiting for QEMU is let go at once, its place on the endpoint freed', async (t) => {
  const { mux, path } = await muxBeforeQemu(t, { endpoints: [{ maxClients: 1 }], timeouts: { clientGreetingMs: 0 } });
  const quitter = await TestClient.connect(mux.path);
  await eventually(() => clients(mux) === 1, 'the client to be registered');
  quitter.close();
  await eventually(() => clients(mux) === 0, 'the client to be let go');
  t.equal(clients(mux), 0, 'gone while still waiting (no greeting timeout set)');
  t.ok(mux.logs.some((l) => l.includes('client disconnected') && l.includes('closed by the client')));
  const next = await TestClient.connect(mux.path);
  await FakeQemu.startAt(t, path);
  t.equal(await next.next(), GREETING_72, 'the one place on the endpoint went to the next client');
});

t.test('a one-liner sent before QEMU is up: greeting, every reply, then EOF', async (t) => {
  const { mux, path } = await muxBeforeQemu(t);
  const c = await TestClient.connect(mux.path);
  c.send('{"execute":"qmp_capabilities"}{"execute":"query-status",');
  c.send('"id":1}');
  c.endInput();
  await elapse(100);
  t.equal(clients(mux), 1, 'a half-closed client that asked for something still waits');
  const fake2 = await FakeQemu.startAt(t, path);
  t.same(await c.rest(), [GREETING_72, '{"return": {}}', '{"return": {}, "id": 1}']);
  t.equal(fake2.received.length, 2, 'qmp-mux\'s own negotiation, then the client\'s command');
  t.equal(fake2.received[1], '{"execute":"query-status"}');
});

t.test('a client that negotiated before QEMU was up is not held to the negotiation timeout', async (t) => {
  const { mux, path } = await muxBeforeQemu(t, { endpoints: [{ negotiationTimeoutMs: 150 }] });
  const c = await TestClient.connect(mux.path);
  c.send('{"execute":"qmp_capabilities"}');
  await elapse(50);
  await FakeQemu.startAt(t, path);
  t.equal(await c.next(), GREETING_72);
  t.equal(await c.next(), '{"return": {}}');
  await elapse(300);
  c.send('{"execute":"query-status","id":1}');
  t.equal(await c.next(), '{"return": {}, "id": 1}', 'still connected after the timeout has passed');
});

t.test('more input before the greeting than qmp-mux holds: the rest waits in the socket, nothing is lost', async (t) => {
  const { mux, path } = await muxBeforeQemu(t);
  const c = await TestClient.connect(mux.path);
  const n = 3000;
  const commands = Array.from({ length: n }, (_, i) => `{"execute":"query-status","id":${i}}`).join('');
  t.ok(commands.length > 64 * 1024, 'more than the 64 KiB held for a waiting client');
  c.send('{"execute":"qmp_capabilities"}' + commands);
  await elapse(100);
  await FakeQemu.startAt(t, path);
  await c.waitLines(n + 2);
  const ids = c.lines.slice(2).map((l) => Number(/"id": (\d+)/.exec(l)?.[1]));
  t.same(ids, Array.from({ length: n }, (_, i) => i), 'every command answered, in order');
});

t.test('input before the greeting: qmp-mux holds 64 KiB of it and reads no more until the client is greeted', async (t) => {
  const { mux, path } = await muxBeforeQemu(t);
  const c = await TestClient.connect(mux.path);
  // In writes of 16 KiB, so that what the client still holds (writableLength) tells what left it, to 16 KiB.
  const chunk = ' '.repeat(16 * 1024);
  const chunks = 512;
  c.send('{"execute":"qmp_capabilities"}');
  for (let i = 0; i < chunks; i++) c.send(chunk);
  c.send('{"execute":"query-status","id":1}');
  const written = 30 + chunks * chunk.length + 33;
  // Time is the subject: however long the client waits, what left it is what qmp-mux holds and what the kernel buffers.
  await elapse(300);
  const left = written - c.socket.writableLength;
  t.ok(left < 1024 * 1024, `${left} bytes left the client: 64 KiB held, a read past it, the kernel's buffers; not the ${written} it wrote`);
  await FakeQemu.startAt(t, path);
  t.match(await c.next(), /^\{"QMP": /);
  t.equal(await c.nextReply(), '{"return": {}}');
  t.equal(await c.nextReply(), '{"return": {}, "id": 1}', 'all of it read once the client is greeted');
});

t.test('events and replies read together keep QEMU\'s order; endpoint filters apply within a burst', async (t) => {
  const fake = await FakeQemu.start(t, { respond: () => undefined });
  const mux = await startMux(t, fake.path, { endpoints: [{}, { events: ['B'] }] });
  const all = await TestClient.connect(mux.endpoints[0]!.address);
  await all.negotiate();
  const onlyB = await TestClient.connect(mux.endpoints[1]!.address);
  await onlyB.negotiate();
  all.send('{"execute":"x","id":"mine"}');
  await fake.until(() => fake.received.length === 2);
  const ev = (name: string, n: number) => `{"timestamp": {"seconds": 1, "microseconds": ${n}}, "event": "${name}"}\r\n`;
  fake.emit(ev('A', 1) + ev('B', 2) + '{"return": {}}\r\n' + ev('A', 3) + ev('B', 4));
  await all.waitLines(2 + 5);
  t.same(all.lines.slice(2).map((l) => /"event": "(\w)"|"id": "(\w+)"/.exec(l)!.slice(1).join('')), ['A', 'B', 'mine', 'A', 'B'], 'the reply between the events, as QEMU wrote it');
  await onlyB.waitLines(2 + 2);
  t.same(onlyB.lines.slice(2).map((l) => /"event": "(\w)"/.exec(l)![1]), ['B', 'B'], 'only the events the endpoint asked for');
});
