import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { runCli, type Running } from '../fixtures/cli.ts';
import { eventually, type TestContext } from '../fixtures/context.ts';
import { FakeQemu } from '../fixtures/fake-qemu.ts';
import { lockCommand } from '../fixtures/locking.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { TestClient } from '../fixtures/qmp-client.ts';
import { socketDir } from '../fixtures/tmp.ts';

/**
 * A reload (SIGUSR2, through the real command) and the lock: who may lock
 * (the policy) and `whenLocked` change for clients already connected, from
 * their next command; a lock held stays held, and its holder can always
 * unlock; a raised input bound lets clients that commands waiting behind a
 * lock had filled be read again.
 */

type Reply = { return?: Record<string, unknown>; error?: { class: string; desc: string }; id?: unknown };
const parse = (line: string): Reply => JSON.parse(line) as Reply;

/** qmp-mux from a configuration file it is reloaded from: `write` (re)writes it, `reload` signals and waits for the log line. */
async function reloadable(t: TestContext, upstream: string, endpoints: (at: (name: string) => string) => object[], extra: object = {}) {
  const dir = socketDir(t);
  const config = join(dir, 'qmp-mux.json');
  const at = (name: string): string => join(dir, `${name}.sock`);
  const write = (list: object[], more: object = {}): void => writeFileSync(config, JSON.stringify({ upstream: { connect: `unix:${upstream}` }, endpoints: list, ...more }));
  write(endpoints(at), extra);
  const run: Running = runCli(t, ['--config', config]);
  await run.waitFor(/clients connect at/);
  const clients: TestClient[] = [];
  t.teardown(() => clients.forEach((c) => c.close()));
  const connect = async (name: string): Promise<TestClient> => {
    const c = await TestClient.connect(at(name));
    clients.push(c);
    await c.negotiate();
    return c;
  };
  let reloads = 0;
  const reload = async (list: object[], more: object = {}): Promise<void> => {
    write(list, more);
    run.child.kill('SIGUSR2');
    reloads++;
    await eventually(() => (run.stderr().match(/reloaded the configuration/g) ?? []).length === reloads, 'the reload done');
  };
  return { at, connect, reload, run };
}

t.test('a reload changes who may lock and what a lock does to the next command; a lock held stays, and its holder can unlock', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t);
  const { at, connect, reload } = await reloadable(t, qemu.monitors[0]!, (at) => [
    { name: 'tools', listen: `unix:${at('tools')}` },
    { name: 'ops', listen: `unix:${at('ops')}` },
    { name: 'ro', listen: `unix:${at('ro')}`, policy: 'read-only' },
  ]);
  const holder = await connect('tools');
  const other = await connect('tools');
  const waiting = await connect('ops');
  const judged = await connect('ops');
  const ro = await connect('ro');
  t.match(parse(await ro.execute('__org.qmp-mux_lock', { mode: 'write' })).error?.desc, /not allowed on endpoint 'ro'/, 'read-only: no lock before the reload');
  t.equal(await holder.execute('__org.qmp-mux_lock', { mode: 'write', reason: 'maintenance' }), '{"return": {"lease-ms": 60000, "mode": "write"}}');
  waiting.send('{"execute":"stop","id":"s1"}');
  const lockNow = async (): Promise<Record<string, unknown>> => parse(await ro.execute('__org.qmp-mux_query-lock')).return!;
  await eventually(async () => (await lockNow())['waiting-commands'] === 1, 'the stop on ops waiting, as ops said before the reload');

  await reload([
    { name: 'tools', listen: `unix:${at('tools')}`, policy: 'read-only' },
    { name: 'ops', listen: `unix:${at('ops')}`, whenLocked: 'refuse' },
    { name: 'ro', listen: `unix:${at('ro')}`, policy: { preset: 'read-only', allow: [{ command: '__org.qmp-mux_lock', arguments: { mode: 'write' } }, '__org.qmp-mux_unlock'] } },
  ]);

  t.match(
    parse(await judged.execute('stop', undefined, 's2')).error?.desc,
    /^The command stop is held back by a lock: client \d+ on endpoint 'tools' has held a write lock since \S+Z \(reason: maintenance\)$/,
    "ops now refuses: the next command of a client connected before the reload",
  );
  t.match(await lockNow(), { mode: 'write', endpoint: 'tools', 'waiting-commands': 1 }, 'the lock still held, and the stop that waited before the reload still waits');
  t.same(waiting.lines.slice(2), [], 'nothing answered to it yet');
  t.match(parse(await other.execute('__org.qmp-mux_lock', { mode: 'write', 'wait-ms': 1000 })).error?.desc, /not allowed on endpoint 'tools'/, 'tools may no longer lock');
  ro.send(lockCommand({ mode: 'write', 'wait-ms': 60000 }, 'ro-lock'));
  await eventually(async () => ((parse(await holder.execute('__org.qmp-mux_query-lock')).return!.waiting as unknown[]) ?? []).length === 1, 'ro, connected before the reload, now in line for the lock');
  t.match(await holder.execute('query-status'), /^\{"return": \{/, "the holder's queries run, as the new policy allows");

  t.equal(await holder.execute('__org.qmp-mux_unlock'), '{"return": {}}', 'the holder unlocks, though its endpoint no longer allows unlock');
  t.equal(await waiting.nextReply(), '{"return": {}, "id": "s1"}', 'the stop that waited ran once the lock ended');
  t.equal(await ro.nextReply(), '{"return": {"lease-ms": 60000, "mode": "write"}, "id": "ro-lock"}', 'then ro got the lock');
  t.match(parse(await judged.execute('cont')).error?.desc, /held back by a lock: client \d+ on endpoint 'ro'/);
  t.equal(await ro.execute('__org.qmp-mux_unlock'), '{"return": {}}');
  t.equal(await judged.execute('cont'), '{"return": {}}');
  t.match(parse(await holder.execute('__org.qmp-mux_unlock')).error?.desc, /not allowed on endpoint 'tools'/, 'without a lock, the policy decides again');
});

const SIZE = 1000;

/** `{"execute":"stop","arguments":{"a":"xxx..."},"id":ID}`: SIZE bytes as qmp-mux encodes it. */
function sized(id: string): string {
  const frame = '{"execute":"stop","arguments":{"a":""}}'.length;
  return `{"execute":"stop","arguments":{"a":"${'x'.repeat(SIZE - frame)}"},"id":${JSON.stringify(id)}}`;
}

t.test('a reload that raises the input bounds lets clients filled up by commands waiting behind a lock be read again', async (t) => {
  const fake = await FakeQemu.start(t);
  const endpoints = (maxInputBytes: number) => (at: (name: string) => string) => [{ name: 'tools', listen: `unix:${at('tools')}`, limits: { maxInputBytes } }];
  const { at, connect, reload } = await reloadable(t, fake.path, endpoints(32 * 1024), { totalInputBytes: 64 * 1024 });
  const holder = await connect('tools');
  t.match(await holder.execute('__org.qmp-mux_lock', { mode: 'write' }), /^\{"return"/);
  const flooders = await Promise.all([connect('tools'), connect('tools'), connect('tools'), connect('tools')]);
  for (const [n, c] of flooders.entries()) for (let i = 0; i < 100; i++) c.send(sized(`${n}.${i}`));
  const held = async (): Promise<number> => ((parse(await holder.execute('__org.qmp-mux_query-lock')).return!['waiting-commands'] as number) ?? 0) * SIZE;
  const per = async (): Promise<number[]> => {
    const clients = parse(await holder.execute('__org.qmp-mux_query-clients')).return as unknown as { 'waiting-commands'?: number }[];
    return clients.map((c) => (c['waiting-commands'] ?? 0) * SIZE).filter((n) => n > 0);
  };
  await eventually(async () => (await held()) >= 64 * 1024 - 4 * SIZE, 'the flooders waiting up to the total');

  await reload(endpoints(32 * 1024)(at), { totalInputBytes: 1024 * 1024 });
  await eventually(async () => (await per()).length === 4 && (await per()).every((n) => n >= 32 * 1024 - SIZE), 'each flooder read again, up to its own bound, once the total was raised');

  await reload(endpoints(1024 * 1024)(at), { totalInputBytes: 1024 * 1024 });
  await eventually(async () => (await held()) === 400 * SIZE, 'all read, once their own bound was raised too');
  t.equal(await holder.execute('__org.qmp-mux_unlock'), '{"return": {}}');
  for (const [n, c] of flooders.entries()) {
    await c.waitLines(102);
    t.equal(c.lines.at(-1), `{"return": {}, "id": "${n}.99"}`, `client ${n}: all answered, in order`);
  }
});
