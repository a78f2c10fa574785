import t from 'tap';
import { DEFAULTS, READ_ONLY_LIMITS as RO_DEFAULTS } from '../../src/config/options.ts';
import { POLICY_PRESETS } from '../../src/policy/presets.ts';
import { MonitorSession } from '../../src/qmp/monitor-session.ts';
import { eventually } from '../fixtures/context.ts';
import { FakeQemu } from '../fixtures/fake-qemu.ts';
import { startMux } from '../fixtures/mux.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { TestClient } from '../fixtures/qmp-client.ts';

/**
 * One client cannot take the monitor from the others: what a client costs
 * QEMU (the bytes QEMU reads for it) and qmp-mux (the input it holds) is
 * bounded, and no reply, however large, costs anyone but its own client.
 */

const READ_ONLY = { policy: { allow: [...POLICY_PRESETS['read-only'].allow], deny: [...POLICY_PRESETS['read-only'].deny] } };
/** Read-only limits as a file with `"policy": "read-only"` gets them. */
const READ_ONLY_LIMITS = { ...DEFAULTS.limits, ...RO_DEFAULTS };

/** Answers what the fake holds, as it comes, until `done`. */
async function answerUntil(fake: FakeQemu, done: () => boolean): Promise<void> {
  while (!done()) {
    await fake.until(() => fake.held.length > 0 || done());
    fake.release();
  }
}

/** `{"execute":NAME,"arguments":{"a":"xxx..."}}` of exactly `size` bytes (as qmp-mux encodes it). */
function sized(name: string, size: number, id?: string, verb = 'execute'): string {
  const frame = `{"${verb}":"${name}","arguments":{"a":""}}`.length;
  const command = `{"${verb}":"${name}","arguments":{"a":"${'x'.repeat(size - frame)}"}}`;
  return id === undefined ? command : `${command.slice(0, -1)},"id":${JSON.stringify(id)}}`;
}

t.test('a reply longer than maxUpstreamMessage reaches its client as an error; QEMU and every other client carry on', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t);
  const mux = await startMux(t, qemu.monitors[0]!, {
    maxUpstreamMessage: 65536,
    endpoints: [{ name: 'ro', ...READ_ONLY, limits: { ...READ_ONLY_LIMITS, maxCommandBytes: 64 * 1024, maxMessageSize: 64 * 1024 } }, { name: 'admin' }],
  });
  const [attacker, other] = await Promise.all([TestClient.connect(mux.endpoints[0]!.address), TestClient.connect(mux.endpoints[1]!.address)]);
  await attacker.negotiate();
  await other.negotiate();
  // QEMU echoes an unknown argument's name, writing each DEL as \u007F: six bytes for one.
  const reply = (dels: number): string => `{"error": {"class": "GenericError", "desc": "Parameter '${'\\u007F'.repeat(dels)}' is unexpected"}}`;
  const amplify = (dels: number, id: string): string => `{"execute":"query-status","arguments":{"${'\x7f'.repeat(dels)}":1},"id":"${id}"}`;
  // Just over the limit, in what comes as two reads of 64 KiB and a bit: the size of the whole message counts.
  const justOver = Math.ceil((65536 - reply(0).length + 1) / 6);
  t.ok(reply(justOver).length > 65536 && reply(justOver).length < 65536 + 12, `QEMU's reply: ${reply(justOver).length} bytes`);
  for (const [dels, id] of [[justOver, 'just-over'], [20_000, 'far-over']] as const) {
    attacker.send(amplify(dels, id));
    t.equal(
      await attacker.nextReply(),
      `{"id": "${id}", "error": {"class": "GenericError", "desc": "QEMU's reply to query-status is larger than qmp-mux passes on (${reply(dels).length} bytes; maxUpstreamMessage is 65536)"}}`,
      `${id}: the client gets an error in place of QEMU's ${reply(dels).length}-byte reply`,
    );
  }
  t.equal(await attacker.execute('query-status', undefined, 'after'), '{"return": {"status": "running", "singlestep": false, "running": true}, "id": "after"}', 'and carries on');
  t.equal(await other.execute('query-name', undefined, 'other'), '{"return": {}, "id": "other"}', 'the other client was not disturbed');
  t.notOk(other.ended, 'still connected');
  const info = mux.mux.describe();
  t.same(info.counters.disconnects, {}, 'no client was disconnected');
  t.equal(info.counters.tooLargeFromQemu, 2);
  t.equal(info.counters.replyMismatches, 0);
  t.match(mux.mux.metrics.render(), /qmpmux_upstream_too_large_total\{kind="reply"\} 2\n/);
  t.match(mux.mux.metrics.render(), /qmpmux_upstream_reconnects_total 0\n/, 'the connection to QEMU was kept');
  t.notOk(mux.logs.some((l) => l.includes('QEMU disconnected')));
  t.equal(mux.logs.filter((l) => l.includes("QEMU's reply was longer than qmp-mux passes on") && l.includes('endpoint=ro') && l.includes('command=query-status')).length, 1, 'logged once for the client, naming it');
});

t.test('a read-only client\'s large command is refused before it costs QEMU anything', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t);
  const mux = await startMux(t, qemu.monitors[0]!, { endpoints: [{ name: 'ro', ...READ_ONLY, limits: READ_ONLY_LIMITS }] });
  const c = await TestClient.connect(mux.path);
  await c.negotiate();
  const sentBefore = mux.mux.describe().counters.commands;
  c.send(sized('query-status', 2049, 'big'));
  t.equal(
    await c.nextReply(),
    `{"id": "big", "error": {"class": "GenericError", "desc": "The command query-status is larger than endpoint 'ro' accepts (2049 bytes as sent to QEMU; its maxCommandBytes is 2048)"}}`,
  );
  c.send(sized('query-status', 2049, 'again'));
  t.match(await c.nextReply(), /^\{"id": "again", "error": \{"class": "GenericError", "desc": "The command query-status is larger/);
  t.equal(mux.mux.describe().counters.commands, sentBefore, 'neither reached QEMU');
  t.equal(mux.mux.describe().counters.tooLarge, 2, 'both counted');
  t.equal(mux.logs.filter((l) => l.includes('refused a command too large')).length, 1, 'logged once for the client');
  c.send(sized('query-status', 2048, 'fits'));
  t.equal(await c.nextReply(), `{"id": "fits", "error": {"class": "GenericError", "desc": "Parameter 'a' is unexpected"}}`, '2048 bytes go: QEMU answers');
  // A message larger than the endpoint's maxMessageSize is not even held: QEMU's own limit error, before its end.
  c.send(`{"execute":"query-status","arguments":{"a":"${'x'.repeat(70_000)}`);
  t.equal(await c.nextReply(), '{"error": {"class": "GenericError", "desc": "JSON token size limit exceeded"}}', 'a message past 16 KiB is cut off as QEMU cuts off one past its limit');
});

t.test('clients take turns by bytes: beside a client queueing its largest commands, another finds at most one of them ahead', async (t) => {
  const fake = await FakeQemu.start(t, { hold: true });
  const mux = await startMux(t, fake.path, { endpoints: [{ name: 'ro', ...READ_ONLY, limits: READ_ONLY_LIMITS }, { name: 'admin' }] });
  const [hog, quiet] = await Promise.all([TestClient.connect(mux.endpoints[0]!.address), TestClient.connect(mux.endpoints[1]!.address)]);
  await hog.negotiate();
  await quiet.negotiate();
  for (let i = 0; i < 20; i++) hog.send(sized('query-status', 2048, `h${i}`));
  await fake.until(() => fake.received.length === 2);
  await eventually(() => mux.mux.describe().queuedBytes >= 19 * 2048 - 19 * `,"id":"h00"`.length, 'the hog\'s other commands queued in qmp-mux');
  t.equal(fake.received.length, 2, 'one 2 KiB command fills the window to QEMU');
  quiet.send('{"execute":"query-name","id":"q"}');
  fake.release(1);
  await fake.until(() => fake.received.length === 3);
  t.equal(fake.received[2], '{"execute":"query-name"}', 'the quiet client\'s command is next, ahead of the hog\'s 19');
  fake.release(1);
  t.equal(await quiet.nextReply(), '{"return": {}, "id": "q"}');
  await answerUntil(fake, () => hog.lines.length === 22);
  for (let i = 0; i < 20; i++) t.equal(await hog.nextReply(), `{"return": {}, "id": "h${i}"}`, `the hog loses nothing: h${i}`);
});

t.test('what QEMU takes to run a command is not its bytes: beside a client pipelining small commands, another finds at most one of them ahead', async (t) => {
  // `query-qmp-schema` is 30 bytes to read and tens of milliseconds of QEMU's time to answer (200 KiB):
  // were a client's small commands to fill the window, each other client would wait for all of them.
  const fake = await FakeQemu.start(t, { hold: true });
  const mux = await startMux(t, fake.path, { endpoints: [{ name: 'ro', ...READ_ONLY, limits: READ_ONLY_LIMITS }, { name: 'admin' }] });
  const [hog, quiet] = await Promise.all([TestClient.connect(mux.endpoints[0]!.address), TestClient.connect(mux.endpoints[1]!.address)]);
  await hog.negotiate();
  await quiet.negotiate();
  for (let i = 0; i < 20; i++) hog.send(`{"execute":"query-qmp-schema","id":"h${i}"}`);
  await fake.until(() => fake.received.length >= 2);
  await eventually(() => mux.mux.describe().queuedBytes > 0, 'the hog\'s other commands queued in qmp-mux');
  quiet.send('{"execute":"query-name","id":"q"}');
  await fake.until(() => fake.received.includes('{"execute":"query-name"}') || fake.held.length > 0);
  // Answer QEMU's commands one at a time until the quiet client's is sent.
  while (!fake.received.includes('{"execute":"query-name"}')) {
    fake.release(1);
    await fake.until(() => fake.received.includes('{"execute":"query-name"}') || fake.held.length > 0);
  }
  const ahead = fake.received.slice(0, fake.received.indexOf('{"execute":"query-name"}')).filter((r) => r === '{"execute":"query-qmp-schema"}').length;
  t.ok(ahead <= 1, `the quiet client's command found ${ahead} of the hog's ahead of it in QEMU (at most 1)`);
  await answerUntil(fake, () => quiet.lines.length === 3 && hog.lines.length === 22);
  t.equal(await quiet.nextReply(), '{"return": {}, "id": "q"}');
  for (let i = 0; i < 20; i++) t.equal(await hog.nextReply(), `{"return": {}, "id": "h${i}"}`, `the hog loses nothing: h${i}`);
});

t.test('exec-oob counts too: one in flight per client, small ones only', async (t) => {
  const fake = await FakeQemu.start(t, { hold: true });
  const mux = await startMux(t, fake.path, { endpoints: [{ name: 'ro', ...READ_ONLY, limits: READ_ONLY_LIMITS }, { name: 'admin' }] });
  const [hog, quiet] = await Promise.all([TestClient.connect(mux.endpoints[0]!.address), TestClient.connect(mux.endpoints[1]!.address)]);
  await hog.negotiate(true);
  await quiet.negotiate(true);
  hog.send(sized('query-yank', 1025, 'big', 'exec-oob'));
  t.match(await hog.nextReply(), /^\{"id": "big", "error": \{"class": "GenericError", "desc": "The command query-yank is larger than endpoint 'ro' accepts \(\d+ bytes as sent to QEMU; the limit for exec-oob is 1024\)"\}\}$/);
  for (let i = 0; i < 12; i++) hog.send(sized('query-yank', 1000, `h${i}`, 'exec-oob'));
  await fake.until(() => fake.received.length === 2);
  await eventually(() => mux.mux.describe().queuedBytes > 10_000, 'the hog\'s other out-of-band commands queued in qmp-mux');
  quiet.send('{"exec-oob":"query-yank","id":"q"}');
  await fake.until(() => fake.received.length === 3);
  t.equal(fake.received[2], '{"exec-oob":"query-yank","id":1}', 'the quiet client\'s goes at once, beside the hog\'s one');
  fake.release();
  t.equal(await quiet.nextReply(), '{"return": {}, "id": "q"}');
  for (let i = 0; i < 12; i++) {
    t.equal(await hog.nextReply(), `{"return": {}, "id": "h${i}"}`, `h${i}: one at a time, none lost`);
    await fake.until(() => fake.held.length > 0 || i === 11);
    if (fake.held.length > 1) t.fail(`${fake.held.length} of the hog's out-of-band commands in flight at once`);
    fake.release();
  }
  t.equal(fake.received.length, 1 + 12 + 1, 'nothing else was sent');
});

t.test("replies qmp-mux makes itself are work: a client's pipelined query-events are made one a turn, not all in one", async (t) => {
  const fake = await FakeQemu.start(t);
  const mux = await startMux(t, fake.path, { endpoints: [{ name: 'ro', ...READ_ONLY, limits: READ_ONLY_LIMITS }] });
  const c = await TestClient.connect(mux.path);
  await c.negotiate();
  const events = 1000;
  fake.emit(Array.from({ length: events }, (_, i) => `{"timestamp": {"seconds": ${i}, "microseconds": 0}, "event": "E", "data": {"pad": "${'p'.repeat(60)}"}}\r\n`).join(''));
  await c.waitLines(2 + events);
  const readings: number[] = [];
  const receive = MonitorSession.prototype.receive;
  MonitorSession.prototype.receive = function (this: MonitorSession, ...args: Parameters<typeof receive>): number {
    const read = receive.apply(this, args);
    if (read > 0) readings.push(read);
    return read;
  };
  t.teardown(() => void (MonitorSession.prototype.receive = receive));
  const ask = '{"execute":"__org.qmp-mux_query-events","arguments":{"since":0}}';
  c.send(ask.repeat(4));
  await c.waitLines(2 + events + 4);
  const replies = c.lines.slice(-4);
  t.ok(replies.every((r) => r.length > 64 * 1024 && r.includes('"seq": 1000')), `four whole journals: ${replies.map((r) => r.length).join(', ')} bytes`);
  t.same(readings, [ask.length, ask.length, ask.length, ask.length], 'read one command a turn: each reply is past the 64 KiB a turn may make');
});

t.test('input a client holds is bounded: past maxInputBytes it is not read until its commands go', async (t) => {
  const fake = await FakeQemu.start(t, { hold: true });
  const maxInputBytes = 16 * 1024;
  const mux = await startMux(t, fake.path, { limits: { maxInputBytes } });
  const c = await TestClient.connect(mux.path);
  await c.negotiate();
  const commands = 200;
  const size = 1000;
  for (let i = 0; i < commands; i++) c.send(sized('query-status', size, `c${i}`));
  await fake.until(() => fake.received.length >= 2);
  // It is read until what it holds reaches the limit; a turn of reading takes at most 16 messages more.
  await eventually(() => mux.mux.describe().queuedBytes >= maxInputBytes - size, 'the client\'s commands queued up to its limit');
  const peak = (): number => mux.mux.describe().queuedBytes;
  t.ok(peak() <= maxInputBytes + 16 * size, `held ${peak()} bytes of ${commands * size}, within ${maxInputBytes} and a turn`);
  let highest = 0;
  await answerUntil(fake, () => {
    highest = Math.max(highest, peak());
    return c.lines.length === commands + 2;
  });
  t.ok(highest <= maxInputBytes + 16 * size, `never more than that while QEMU answered: at most ${highest}`);
  for (let i = 0; i < commands; i++) {
    const line = await c.nextReply();
    if (line !== `{"return": {}, "id": "c${i}"}`) t.equal(line, `{"return": {}, "id": "c${i}"}`);
  }
  t.equal(c.lines.length, commands + 2, 'every command answered, in order');
  t.equal(peak(), 0);
});

t.test('input all clients hold is bounded by totalInputBytes', async (t) => {
  const fake = await FakeQemu.start(t, { hold: true });
  const totalInputBytes = 64 * 1024;
  const mux = await startMux(t, fake.path, { totalInputBytes, limits: { maxInputBytes: 1024 * 1024 } });
  const clients = await Promise.all(Array.from({ length: 8 }, () => TestClient.connect(mux.path)));
  for (const c of clients) await c.negotiate();
  for (const [n, c] of clients.entries()) for (let i = 0; i < 100; i++) c.send(sized('query-status', 1000, `${n}.${i}`));
  await eventually(() => mux.mux.describe().queuedBytes >= totalInputBytes, 'clients queued up to the total');
  const held = mux.mux.describe().queuedBytes;
  t.ok(held <= totalInputBytes + clients.length * 16 * 1000, `${held} bytes held of ${8 * 100 * 1000}`);
  await answerUntil(fake, () => clients.every((c) => c.lines.length === 102));
  for (const [n, c] of clients.entries()) {
    await c.waitLines(102);
    t.equal(c.lines.at(-1), `{"return": {}, "id": "${n}.99"}`, `client ${n}: all answered`);
  }
});

t.test('a stuck QEMU is visible: stall logged, counted and shown by readiness, and nothing in flight is lost', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t);
  const mux = await startMux(t, qemu.monitors[0]!, { timeouts: { stallMs: 200 } });
  const c = await TestClient.connect(mux.path);
  await c.negotiate();
  t.equal(mux.mux.notReady(), undefined);
  qemu.process.kill('SIGSTOP');
  t.teardown(() => void qemu.process.kill('SIGCONT'));
  c.send('{"execute":"query-status","id":"waits"}');
  await eventually(() => mux.logs.some((l) => l.includes('QEMU has stopped answering')), 'the stall to be logged');
  t.match(mux.mux.notReady(), /^QEMU has not answered a command for \d+ ms$/, '/readyz says not ready, and why');
  t.ok(mux.mux.describe().oldestCommandMs > 200);
  t.match(mux.mux.metrics.render(), /qmpmux_upstream_stalls_total 1\n/);
  t.match(mux.mux.status(), /"oldest-command-ms": \d{3,}/, 'query-proxy and /status show the age');
  qemu.process.kill('SIGCONT');
  t.equal(await c.nextReply(), '{"return": {"status": "running", "singlestep": false, "running": true}, "id": "waits"}', 'answered once QEMU runs again');
  t.equal(mux.mux.notReady(), undefined, 'ready again');
  await eventually(() => mux.logs.some((l) => l.includes('QEMU is answering again')), 'the end of the stall to be logged');
  t.equal(mux.logs.filter((l) => l.includes('QEMU has stopped answering')).length, 1, 'said once');
  t.match(mux.mux.metrics.render(), /qmpmux_upstream_oldest_command_age_seconds 0\n/);
});
