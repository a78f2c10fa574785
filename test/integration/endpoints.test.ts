import { existsSync, mkdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { parseArgs } from '../../src/cli/args.ts';
import { defaultEndpoint, type Options } from '../../src/config/options.ts';
import { preflight } from '../../src/config/preflight.ts';
import { resolveOptions } from '../../src/config/resolve.ts';
import { createLogger } from '../../src/log.ts';
import { REFUSALS_LOGGED } from '../../src/mux/command-report.ts';
import { answers } from '../../src/net/unix-socket.ts';
import { POLICY_PRESETS } from '../../src/policy/presets.ts';
import { TakeoverSource } from '../../src/upstream/takeover.ts';
import { elapse, eventually } from '../fixtures/context.ts';
import { runCli } from '../fixtures/cli.ts';
import { FakeQemu, replyTo } from '../fixtures/fake-qemu.ts';
import { startMux } from '../fixtures/mux.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { TestClient } from '../fixtures/qmp-client.ts';
import { socketDir } from '../fixtures/tmp.ts';

/** Endpoints: policy, limits, socket files, takeover, qmp-mux's own commands. */

const readOnly = { policy: { allow: [...POLICY_PRESETS['read-only'].allow], deny: [...POLICY_PRESETS['read-only'].deny] } };
const noQuit = { policy: { allow: ['*'], deny: ['quit', 'system_*'] } };

t.test('policy: bypass attempts are refused and never reach QEMU', async (t) => {
  const fake = await FakeQemu.start(t);
  const mux = await startMux(t, fake.path, { endpoints: [readOnly, noQuit] });
  const ro = await TestClient.connect(mux.endpoints[0]!.address);
  await ro.negotiate(true);
  const attempts: [string, string][] = [
    ['{"execute":"quit","id":1}', 'quit'],
    ['{"execute":"qu\\u0069t","id":2}', 'quit'],
    ["{'execute':'quit','id':3}", 'quit'],
    ['{"exec-oob":"quit","id":4}', 'quit'],
    ['{"exec-oob":"migrate-pause","id":5}', 'migrate-pause'],
    ['{"execute":"human-monitor-command","arguments":{"command-line":"info status"},"id":6}', 'human-monitor-command'],
    ['{"execute":"system_reset","id":7}', 'system_reset'],
  ];
  for (const [input, name] of attempts) {
    ro.send(input);
    const reply = await ro.next();
    t.match(reply, new RegExp(`^\\{"id": \\d, "error": \\{"class": "GenericError", "desc": "The command ${name} is not allowed on endpoint 'ep0'"\\}\\}$`), input);
  }
  ro.send('{"execute":"query-status","execute":"quit","id":8}');
  t.equal(await ro.next(), '{"error": {"class": "GenericError", "desc": "JSON parse error, duplicate key"}}', 'duplicate keys: a parse error, as with QEMU');
  ro.send('{"execute":"query-status","id":9}');
  t.equal(await ro.next(), '{"return": {}, "id": 9}', 'what the policy allows goes through');
  t.equal(fake.received.length, 2, 'QEMU saw only the negotiation and query-status');
  t.equal(fake.received[1], '{"execute":"query-status"}');
  t.equal(mux.logs.filter((l) => l.includes('refused a command')).length, attempts.length, 'each refusal logged once');
  t.match(mux.logs.find((l) => l.includes('refused a command')), /endpoint=ep0 client=local#\d+ command=quit/, 'with endpoint and client');

  const nq = await TestClient.connect(mux.endpoints[1]!.address);
  await nq.negotiate();
  nq.send('{"execute":"system_powerdown","id":1}{"execute":"QUIT","id":2}{"execute":"stop","id":3}');
  t.match(await nq.next(), /not allowed on endpoint 'ep1'/, 'deny globs');
  t.equal(await nq.next(), '{"return": {}, "id": 2}', 'names are exact: QUIT is not quit (QEMU will not find it)');
  t.equal(await nq.next(), '{"return": {}, "id": 3}', 'deny wins only where it matches');
  const counters = (JSON.parse(await nq.execute('__org.qmp-mux_query-proxy')) as { return: { counters: { refused: number } } }).return.counters;
  t.equal(counters.refused, attempts.length + 1, 'query-proxy counts every refusal');
});

t.test("policy: a client's refusals are logged for the first few, then counted, and said at its disconnection", async (t) => {
  const fake = await FakeQemu.start(t);
  const mux = await startMux(t, fake.path, { endpoints: [noQuit] });
  const flood = await TestClient.connect(mux.endpoints[0]!.address);
  await flood.negotiate();
  const count = REFUSALS_LOGGED * 3;
  flood.send('{"execute":"quit"}'.repeat(count));
  for (let i = 0; i < count; i++) t.match(await flood.next(), /not allowed on endpoint 'ep0'/);
  const refusalLines = (): string[] => mux.logs.filter((l) => l.includes('refused a command'));
  t.equal(refusalLines().length, REFUSALS_LOGGED + 1, 'the first refusals each, then one line');
  t.match(refusalLines().at(-1), /further refusals are counted, not logged.*endpoint=ep0 client=local#\d+ command=quit/);
  const other = await TestClient.connect(mux.endpoints[0]!.address);
  await other.negotiate();
  t.match(await other.execute('system_reset'), /not allowed/);
  t.match(refusalLines().at(-1), /^\S+ WARN  refused a command endpoint=ep0 client=local#\d+ command=system_reset/, "another client's refusal is its own to log");
  const counters = (JSON.parse(await other.execute('__org.qmp-mux_query-proxy')) as { return: { counters: { refused: number } } }).return.counters;
  t.equal(counters.refused, count + 1, 'every refusal counted');
  flood.close();
  await eventually(() => mux.logs.find((l) => l.includes('client disconnected') && l.includes(`refused=${count}`)), 'the flooding client disconnected, its refusals counted');
  t.equal(fake.received.length, 1, "none of them reached QEMU (it saw only qmp-mux's negotiation)");
});

t.test('policy: refused is distinguishable from not found; query-commands lists what is allowed', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t);
  const mux = await startMux(t, qemu.monitors[0]!, { endpoints: [readOnly, {}] });
  const ro = await TestClient.connect(mux.endpoints[0]!.address);
  await ro.negotiate();
  t.match(await ro.execute('stop', undefined, 1), /"class": "GenericError", "desc": "The command stop is not allowed/);
  t.match(await ro.execute('query-nonexistent', undefined, 2), /"class": "CommandNotFound", "desc": "The command query-nonexistent has not been found"/);
  const names = (line: string): string[] => (JSON.parse(line) as { return: { name: string }[] }).return.map((c) => c.name);
  const allowed = names(await ro.execute('query-commands'));
  t.ok(allowed.includes('query-status') && allowed.includes('qom-get'), 'allowed commands listed');
  t.notOk(allowed.includes('quit') || allowed.includes('stop') || allowed.includes('human-monitor-command'), 'the rest are not');
  t.ok(allowed.includes('__org.qmp-mux_query-clients') && allowed.includes('__org.qmp-mux_query-proxy'), 'qmp-mux\'s own are');
  const all = await TestClient.connect(mux.endpoints[1]!.address);
  await all.negotiate();
  const everything = names(await all.execute('query-commands'));
  t.ok(everything.includes('quit') && everything.length > allowed.length + 50, 'an open endpoint lists everything');
});

t.test('events: each endpoint gets the events it asked for', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t);
  const mux = await startMux(t, qemu.monitors[0]!, { endpoints: [{}, { events: ['RES*'] }] });
  const all = await TestClient.connect(mux.endpoints[0]!.address);
  await all.negotiate();
  const some = await TestClient.connect(mux.endpoints[1]!.address);
  await some.negotiate();
  await all.execute('stop');
  await all.execute('cont');
  t.match(await some.next(), /"event": "RESUME"/, 'RESUME only, no STOP');
  t.equal(all.lines.filter((l) => l.includes('"event"')).length, 2);
});

t.test('maxClients: one too many gets an error and is closed; the others carry on', async (t) => {
  const fake = await FakeQemu.start(t);
  const mux = await startMux(t, fake.path, { endpoints: [{ maxClients: 2 }] });
  const a = await TestClient.connect(mux.path);
  const b = await TestClient.connect(mux.path);
  await a.negotiate();
  await b.next();
  const c = await TestClient.connect(mux.path);
  t.same(await c.rest(), ['{"error": {"class": "GenericError", "desc": "Too many clients on endpoint \'ep0\' (at most 2)"}}']);
  t.equal(await a.execute('query-status', undefined, 1), '{"return": {}, "id": 1}');
  b.close();
  await eventually(() => mux.mux.describe().clients === 1, 'qmp-mux to let go of the client that left');
  const d = await TestClient.connect(mux.path);
  t.match(await d.next(), /^\{"QMP"/, 'room again once one leaves');
});

t.test('negotiation timeout: a client that never negotiates is closed', async (t) => {
  const fake = await FakeQemu.start(t);
  const mux = await startMux(t, fake.path, { endpoints: [{ negotiationTimeoutMs: 400 }] });
  const busy = await TestClient.connect(mux.path);
  await busy.negotiate();
  const idle = await TestClient.connect(mux.path);
  await idle.next();
  t.same(await idle.rest(), ['{"error": {"class": "GenericError", "desc": "Capabilities negotiation not done within 400 ms; closing"}}']);
  t.equal(await busy.execute('query-status', undefined, 1), '{"return": {}, "id": 1}', 'a negotiated client is not affected');
  await eventually(() => mux.logs.some((l) => l.includes('did not negotiate in time')), 'the disconnect logged, with why');
});

t.test('message size limit: QEMU-style error, bounded memory, the client goes on', async (t) => {
  const fake = await FakeQemu.start(t);
  const mux = await startMux(t, fake.path, { limits: { maxMessageSize: 4096 } });
  const c = await TestClient.connect(mux.path);
  await c.negotiate();
  c.send(`{"execute":"x","arguments":{"a":"${'y'.repeat(10000)}"}}`);
  t.equal(await c.next(), '{"error": {"class": "GenericError", "desc": "JSON token size limit exceeded"}}');
  c.send('\x01{"execute":"query-status","id":"after"}');
  let line = '';
  for (let i = 0; i < 20 && !line.includes('"after"'); i++) line = await c.next();
  t.equal(line, '{"return": {}, "id": "after"}');
  t.equal(fake.received.length, 2, 'the oversize message never reached QEMU');
});

t.test('pending limit: qmp-mux stops reading a flooding client, loses nothing, and others do not wait', async (t) => {
  const fake = await FakeQemu.start(t, { hold: true });
  const mux = await startMux(t, fake.path, { limits: { maxPendingRequests: 5 } });
  const flood = await TestClient.connect(mux.path);
  await flood.negotiate();
  const other = await TestClient.connect(mux.path);
  await other.negotiate();
  const n = 50000;
  let burst = '';
  for (let i = 0; i < n; i++) burst += `{"execute":"x","id":${i}}`;
  flood.send(burst);
  await elapse(300);
  t.ok(flood.socket.writableLength > 0, `the flooding client cannot write everything (${flood.socket.writableLength} bytes still on its side): qmp-mux stopped reading`);
  other.send('{"execute":"__org.qmp-mux_query-clients","id":"who"}');
  const list = JSON.parse(await other.next()) as { return: { client: number; 'in-flight': number }[] };
  const pending = list.return[0]!['in-flight'];
  t.ok(pending <= 5 + 65536 / 20, `flooding client holds ${pending} requests in qmp-mux: its limit plus at most one read`);
  other.send('{"execute":"y","id":"me"}');
  let floodRepliesWhenOtherAnswered = -1;
  let answered = 0;
  while (flood.lines.length < 2 + n && answered < 100000) {
    await fake.until(() => fake.held.length > 0 || flood.lines.length >= 2 + n);
    answered += fake.held.length;
    fake.release();
    if (floodRepliesWhenOtherAnswered < 0 && other.lines.includes('{"return": {}, "id": "me"}')) floodRepliesWhenOtherAnswered = flood.lines.length - 2;
  }
  await flood.waitLines(2 + n);
  const ids = flood.lines.slice(2).map((l) => (JSON.parse(l) as { id: number }).id);
  t.ok(ids.length === n && ids.every((id, i) => id === i), 'every command answered, in order');
  t.ok(floodRepliesWhenOtherAnswered >= 0 && floodRepliesWhenOtherAnswered < 50, `the other client was answered after ${floodRepliesWhenOtherAnswered} of the flood's ${n} replies: it did not wait for the flood`);
});

t.test('unix socket files: mode 0600 by default, mode and group as configured', async (t) => {
  const fake = await FakeQemu.start(t);
  const gid = process.getgid!();
  const mux = await startMux(t, fake.path, { endpoints: [{}, { socket: { mode: 0o660, owner: undefined, group: gid } }] });
  const paths = mux.endpoints.map((e) => (e.address.type === 'unix' ? e.address.path : ''));
  t.equal(statSync(paths[0]!).mode & 0o777, 0o600);
  t.equal(statSync(paths[1]!).mode & 0o777, 0o660);
  t.equal(statSync(paths[1]!).gid, gid);
  await mux.stop();
  t.notOk(existsSync(paths[0]!) || existsSync(paths[1]!), 'removed on stop');
});

t.test('unix socket files: a file another process put at the path since is left alone on stop', async (t) => {
  const fake = await FakeQemu.start(t);
  const mux = await startMux(t, fake.path);
  const path = mux.path;
  unlinkSync(path);
  const other = createServer((s) => s.end('other\n'));
  await new Promise<void>((r) => other.listen(path, r));
  t.teardown(() => other.close());
  await mux.stop();
  t.ok(existsSync(path), 'still there');
  const c = await TestClient.connect(path);
  t.same(await c.rest(), ['other'], 'and still the other process\'s');
  const base = socketDir(t);
  const dir = join(base, 'd'.repeat(100 - base.length));
  mkdirSync(dir);
  const long = join(dir, 's');
  t.ok(long.length <= 107 && long.length + 20 > 107, 'a path too long to bind beside it first');
  const mux2 = await startMux(t, fake.path, { endpoints: [{ address: { type: 'unix', path: long } }] });
  t.equal(statSync(long).mode & 0o777, 0o600, 'still bound, with its mode');
  await mux2.stop();
  t.notOk(existsSync(long), 'removed on stop');
});

t.test('unix socket files: an endpoint closed while it listens anew is left closed', async (t) => {
  const fake = await FakeQemu.start(t);
  const mux = await startMux(t, fake.path);
  const endpoint = mux.endpoints[0]!;
  const relistening = endpoint.relisten();
  await endpoint.close();
  await relistening;
  t.notOk(existsSync(mux.path), 'no socket file');
  t.notOk(await answers(mux.path), 'nobody listening');
});

t.test('takeover restore: a QEMU that took the path back keeps it; its predecessor\'s moved socket goes', async (t) => {
  const dir = socketDir(t);
  const path = join(dir, 'vm.qmp');
  const serve = async (): Promise<Server> => {
    const server = createServer((s) => s.end());
    await new Promise<void>((r) => server.listen(path, r));
    return server;
  };
  const before = await serve();
  const takeover = new TakeoverSource({ path, backoff: { initialMs: 10, maxMs: 10 }, log: createLogger({ level: 'error', format: 'text', trace: false, sink: () => undefined }) });
  await takeover.open();
  const moved = join(dir, '.vm.qmp.qmp-mux');
  t.ok(existsSync(moved));
  await new Promise((r) => before.close(r));
  const after = await serve();
  t.teardown(() => after.close());
  await takeover.stop();
  t.notOk(existsSync(moved), 'the dead moved socket is removed');
  t.ok(await answers(path), 'the new QEMU keeps its path');
});

t.test('tcp: loopback only unless the endpoint allows remote clients', async (t) => {
  const fake = await FakeQemu.start(t);
  const options = (allowRemote: boolean): Options => ({
    ...resolveOptions(parseArgs(['--upstream', `unix:${fake.path}`]), undefined),
    endpoints: [{ ...defaultEndpoint('open', { type: 'tcp', host: '0.0.0.0', port: 0 }), allowRemote }],
  });
  await t.rejects(preflight(options(false)), { code: 'QMPMUX_CONFIG', message: "endpoint 'open' (tcp:0.0.0.0:0): not a loopback address, and QMP authenticates no one: give the endpoint tls with client certificates and set allowRemote (allowRemote alone exposes it to anyone who can reach it)" });
  await t.resolves(preflight(options(true)));
  const mux = await startMux(t, fake.path, { endpoints: [{ address: { type: 'tcp', host: '0.0.0.0', port: 0 }, allowRemote: true }] });
  const a = mux.endpoints[0]!.address;
  const c = await TestClient.connect({ type: 'tcp', host: '127.0.0.1', port: a.type === 'tcp' ? a.port : 0 });
  t.match(await c.next(), /^\{"QMP"/);
});

t.test('qmp-mux\'s own commands: clients and state, under the endpoint policy', async (t) => {
  const fake = await FakeQemu.start(t);
  const mux = await startMux(t, fake.path, { endpoints: [{}, { policy: { allow: ['*'], deny: ['__org.qmp-mux_*'] } }] });
  const a = await TestClient.connect(mux.path);
  await a.negotiate();
  await a.execute('query-status', undefined, 1);
  const waiting = await TestClient.connect(mux.path);
  await waiting.next();
  const clients = JSON.parse(await a.execute('__org.qmp-mux_query-clients', undefined, 'c')) as { return: Record<string, unknown>[]; id: string };
  t.equal(clients.id, 'c');
  t.equal(clients.return.length, 2);
  t.match(clients.return[0], { client: Number, endpoint: 'ep0', peer: /^local#\d+$/, 'connected-since': /^\d{4}-\d\d-\d\dT/, negotiated: true, commands: 1, 'in-flight': 1, 'bytes-queued': 0 }, 'in flight: this very request');
  t.match(clients.return[1], { negotiated: false, commands: 0 });
  waiting.close();
  await eventually(() => mux.logs.some((l) => l.includes('client disconnected')), 'the disconnect');
  a.send('garbage ');
  await a.next();
  const state = JSON.parse(await a.execute('__org.qmp-mux_query-proxy')) as { return: Record<string, unknown> };
  t.match(state.return, {
    version: /^\d+\.\d+\.\d+/,
    uptime: Number,
    upstream: { state: 'ready', mode: 'connect', qemu: { qemu: { major: 7 } } },
    clients: Number,
    counters: { commands: 1, events: 0, errors: 1, refused: 0, 'too-large': 0, 'reply-mismatches': 0, disconnects: { finished: 1 } },
  });
  t.match(await a.execute('__org.qmp-mux_query-proxy', { verbose: true }, 1), /"desc": "Parameter 'verbose' is unexpected"/);
  t.match(await a.execute('__org.qmp-mux_nonexistent', undefined, 2), /"CommandNotFound", "desc": "The command __org.qmp-mux_nonexistent has not been found"/);
  const denied = await TestClient.connect(mux.endpoints[1]!.address);
  await denied.negotiate();
  t.match(await denied.execute('__org.qmp-mux_query-clients', undefined, 3), /not allowed on endpoint 'ep1'/);
  t.equal(fake.received.length, 2, 'none of it reached QEMU');
});

t.test('query-proxy counts error replies: QEMU\'s, qmp-mux\'s, and those of clients gone since', async (t) => {
  const fake = await FakeQemu.start(t, { respond: (cmd, raw) => replyTo(raw, cmd.execute === 'bad' ? { error: '{"class": "GenericError", "desc": "no"}' } : { return: '{}' }) });
  const mux = await startMux(t, fake.path);
  const errors = async (c: TestClient): Promise<number> => (JSON.parse(await c.execute('__org.qmp-mux_query-proxy')) as { return: { counters: { errors: number } } }).return.counters.errors;
  const a = await TestClient.connect(mux.path);
  await a.negotiate();
  t.equal(await errors(a), 0);
  t.equal(await a.execute('bad', undefined, 1), '{"id": 1, "error": {"class": "GenericError", "desc": "no"}}');
  t.equal(await a.execute('good', undefined, 2), '{"return": {}, "id": 2}');
  t.equal(await errors(a), 1, 'QEMU\'s error reply');
  const b = await TestClient.connect(mux.path);
  await b.negotiate();
  t.match(await b.execute('bad'), /"error"/);
  b.send('garbage ');
  await b.next();
  t.equal(await errors(a), 3, 'another client\'s: QEMU\'s, and qmp-mux\'s for its garbage');
  b.close();
  await eventually(() => mux.mux.describe().clients === 1, 'qmp-mux to let go of the client that left');
  t.equal(await errors(a), 3, 'still counted once it has gone');
});

t.test('socket takeover: existing tools keep using QEMU\'s path, and it is put back', async (t) => {
  if (!needQemu(t)) return;
  const dir = socketDir(t);
  const qemu = await startQemu(t, { dir, names: ['vm.qmp'] });
  const path = qemu.monitors[0]!;
  const config = join(dir, 'mux.json');
  writeFileSync(config, JSON.stringify({ upstream: { connect: `unix:${path}`, takeover: true }, endpoints: [{ name: 'extra', listen: `unix:${join(dir, 'extra.sock')}` }] }));
  const run = runCli(t, ['--config', config]);
  await run.waitFor(/QEMU connected/);
  t.ok(existsSync(join(dir, '.vm.qmp.qmp-mux')), 'QEMU\'s socket moved aside');
  const legacy1 = await TestClient.connect(path);
  const legacy2 = await TestClient.connect(path);
  await legacy1.negotiate();
  await legacy2.negotiate();
  t.match(await legacy1.execute('query-status'), /"running": true/, 'a tool at the old path talks to QEMU through qmp-mux');
  t.match(await legacy2.execute('query-name'), /"return"/, 'two at once, which QEMU alone would not serve');
  run.child.kill('SIGKILL');
  await run.exited;
  const again = runCli(t, ['--config', config]);
  await again.waitFor(/QEMU connected/);
  const afterCrash = await TestClient.connect(path);
  await afterCrash.negotiate();
  t.match(await afterCrash.execute('query-status'), /"running": true/, 'a qmp-mux that died is replaced: the next one picks up the moved socket');
  again.child.kill('SIGTERM');
  t.same(await again.exited, { code: 0, signal: null });
  t.notOk(existsSync(join(dir, '.vm.qmp.qmp-mux')), 'moved back');
  const direct = await TestClient.connect(path);
  await direct.negotiate();
  t.match(await direct.execute('query-status'), /"running": true/, 'the original path is QEMU\'s again');
});

t.test('socket takeover survives QEMU exiting and a new QEMU starting on the same path', async (t) => {
  if (!needQemu(t)) return;
  const dir = socketDir(t);
  const first = await startQemu(t, { dir, names: ['vm.qmp'] });
  const path = first.monitors[0]!;
  const moved = join(dir, '.vm.qmp.qmp-mux');
  const run = runCli(t, ['--upstream', `unix:${path}`, '--takeover', '--listen', `unix:${join(dir, 'extra.sock')}`]);
  await run.waitFor(/QEMU connected/);
  const before = await TestClient.connect(path);
  await before.negotiate();
  // A QEMU that exits removes its socket path: qmp-mux's socket, by then.
  first.process.kill('SIGTERM');
  await first.exited;
  t.match(await before.rest(), [/"event": "SHUTDOWN"/], 'SHUTDOWN, then EOF, when QEMU goes');
  await run.waitFor(/took QEMU's socket path back/);
  const waiting = await TestClient.connect(path);
  // A QEMU that starts replaces whatever socket is at its path: qmp-mux's again.
  await startQemu(t, { dir, names: ['vm.qmp'] });
  t.match(await waiting.next(), /^\{"QMP": /, 'a client that came while QEMU was away gets the new QEMU\'s greeting, through qmp-mux');
  t.equal(run.stderr().match(/took QEMU's socket path back/g)?.length, 2, 'the path was taken back twice');
  const a = await TestClient.connect(path);
  const b = await TestClient.connect(path);
  await a.negotiate();
  await b.negotiate();
  t.match(await a.execute('query-status'), /"running": true/);
  t.match(await b.execute('__org.qmp-mux_query-proxy'), /"upstream": \{"state": "ready"/, 'two clients at once, and qmp-mux\'s own commands: qmp-mux serves the path');
  run.child.kill('SIGTERM');
  t.same(await run.exited, { code: 0, signal: null });
  t.notOk(existsSync(moved), 'nothing left at the moved path');
  const direct = await TestClient.connect(path);
  await direct.negotiate();
  t.match(await direct.execute('query-status'), /"running": true/, 'the original path is the new QEMU\'s');
});
