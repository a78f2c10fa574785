import t from 'tap';
import { eventually } from '../fixtures/context.ts';
import { duringLock, hammer, lockBench, lockCommand } from '../fixtures/locking.ts';
import { needQemu } from '../fixtures/qemu.ts';
import type { TestClient } from '../fixtures/qmp-client.ts';

/**
 * Locks against a real QEMU: a holder's steps run with nothing of others
 * that its mode holds back in between. The audit log (every command, in
 * the order QEMU answered, with the lock's lines) is the witness of what
 * QEMU ran when.
 */

type Reply = { return?: Record<string, unknown>; error?: { class: string; desc: string }; id?: unknown };
const parse = (line: string): Reply => JSON.parse(line) as Reply;

/** The holder's number, from `query-lock`. */
async function holderNumber(c: TestClient): Promise<number> {
  return parse(await c.execute('__org.qmp-mux_query-lock')).return!.client as number;
}

/** The number of `c`, from `query-clients`, asked while it is qmp-mux's only client (so before it locks: a short lease may lapse before any later answer). */
async function onlyClientNumber(c: TestClient): Promise<number> {
  const clients = JSON.parse(await c.execute('__org.qmp-mux_query-clients')) as { return: { client: number }[] };
  if (clients.return.length !== 1) throw new Error(`expected one client, got ${JSON.stringify(clients.return)}`);
  return clients.return[0]!.client;
}

t.test('write lock: a multi-step sequence while others hammer stop/cont; no stop lands inside it, queries keep working', async (t) => {
  if (!needQemu(t)) return;
  const { connect, audit, settled } = await lockBench(t);
  const holder = await connect('tools');
  const stopper = hammer(await connect('tools'), ['stop', 'cont']);
  const poller = hammer(await connect('tools'), ['query-status']);
  const impatient = hammer(await connect('ops'), ['stop', 'query-status', 'cont']);
  await eventually(() => [stopper, poller, impatient].every((h) => h.replies.length >= 4), 'every other client under way');

  holder.send(lockCommand({ mode: 'write', reason: 'backup' }, 'lock'));
  t.same(parse(await holder.nextReply()), { return: { mode: 'write', 'lease-ms': 60000 }, id: 'lock' });
  const grantedAt = holder.lines.length;
  const pollsAtGrant = poller.replies.length;
  const before = parse(await holder.execute('query-status')).return;
  t.equal(await holder.execute('migrate-set-parameters', { 'max-bandwidth': 12345678 }), '{"return": {}}');
  t.match(await holder.execute('query-migrate-parameters'), /"max-bandwidth": 12345678[,}]/, 'its own change, unchanged by anyone else');
  await eventually(() => poller.replies.length >= pollsAtGrant + 20, 'the poller answered on, under the lock');
  await eventually(() => impatient.replies.some((r) => r.includes('held back')), 'a refusal at the endpoint that does not wait');
  const after = parse(await holder.execute('query-status')).return;
  const me = await holderNumber(holder);
  holder.send('{"execute":"__org.qmp-mux_unlock","id":"unlock"}');
  t.equal(await holder.nextReply(), '{"return": {}, "id": "unlock"}');
  t.same(after, before, 'the run state was the same at both ends of the sequence');
  const events = holder.lines.slice(grantedAt, -1).filter((l) => /"event": "(STOP|RESUME)"/.test(l));
  t.same(events, [], 'no STOP or RESUME reached the holder while it held the lock');

  const refusal = impatient.replies.find((r) => r.includes('held back'))!;
  t.match(parse(refusal).error, {
    class: 'GenericError',
    desc: new RegExp(`^The command (stop|cont) is held back by a lock: client ${me} on endpoint 'tools' has held a write lock since \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z \\(reason: backup\\)$`),
  });
  await Promise.all([stopper, poller, impatient].map((h) => h.stop()));
  t.notOk(stopper.replies.some((r) => r.includes('error')), 'the client whose endpoint waits got no error: its stop and cont waited');

  await settled();
  const { granted, ended, during, after: later } = duringLock(audit(), me);
  t.match(granted, { endpoint: 'tools', client: me, mode: 'write', reason: 'backup', 'lease-ms': 60000 });
  t.match(ended, { why: 'unlock', client: me, mode: 'write' });
  const ranInside = during.filter((l) => (l.command === 'stop' || l.command === 'cont') && l.outcome === 'return');
  t.same(ranInside, [], 'QEMU answered no stop or cont while the lock was held');
  t.ok(during.filter((l) => l.command === 'query-status' && l.client !== me && l.outcome === 'return').length >= 20, "others' queries ran inside it");
  t.ok(during.some((l) => l.command === 'stop' && l.endpoint === 'ops' && l.outcome === 'locked'), 'refusals are in the audit log');
  t.ok(later.some((l) => l.command === 'stop' || l.command === 'cont'), 'the stop and cont that waited ran after it');
});

t.test("exclusive lock: nothing of others reaches QEMU; qmp-mux's own commands still answer; exec-oob is refused", async (t) => {
  if (!needQemu(t)) return;
  const { connect, audit, settled } = await lockBench(t);
  const holder = await connect('tools');
  const poller = hammer(await connect('tools'), ['query-status', 'query-name']);
  const stopper = hammer(await connect('tools'), ['stop', 'cont']);
  const impatient = await connect('ops');
  const urgent = await connect('tools', true);
  const watcher = await connect('ro');
  await eventually(() => poller.replies.length >= 4 && stopper.replies.length >= 4, 'the poller and the stopper under way');

  holder.send(lockCommand({ mode: 'exclusive' }, 'lock'));
  t.same(parse(await holder.nextReply()), { return: { mode: 'exclusive', 'lease-ms': 60000 }, id: 'lock' });
  const grantedAt = holder.lines.length;
  const me = await holderNumber(holder);
  const polled = poller.replies.length;
  t.match(parse(await impatient.execute('query-status')).error, { class: 'GenericError', desc: new RegExp(`^The command query-status is held back by a lock: client ${me} on endpoint 'tools' has held an? exclusive lock since `) });
  urgent.send('{"exec-oob":"migrate-pause","id":"oob"}');
  t.match(parse(await urgent.nextReply()), { id: 'oob', error: { desc: /^The command migrate-pause is held back by a lock, and exec-oob commands do not wait: client \d+ / } });
  const seen = parse(await watcher.execute('__org.qmp-mux_query-lock')).return!;
  t.match(seen, { mode: 'exclusive', client: me, endpoint: 'tools', peer: `local#${me}`, granted: true, 'lease-ms': 60000, waiting: [] });
  await eventually(async () => (parse(await watcher.execute('__org.qmp-mux_query-lock')).return!['waiting-commands'] as number) >= 1, "the poller's command waiting");
  t.equal(poller.replies.length, polled, 'the poller got nothing while it waited');
  for (const step of ['query-status', 'query-name', 'query-block']) t.match(await holder.execute(step), /^\{"return": /, `the holder's ${step}`);
  t.equal(await holder.execute('__org.qmp-mux_unlock'), '{"return": {}}');
  t.same(holder.lines.slice(grantedAt, -1).filter((l) => /"event": "(STOP|RESUME)"/.test(l)), [], 'no STOP or RESUME reached the holder while it held the lock');
  await eventually(() => poller.replies.length > polled, 'the poller going on once it ended');
  await Promise.all([poller.stop(), stopper.stop()]);
  t.notOk(stopper.replies.some((r) => r.includes('error')), "the stopper's endpoint waits: its stop and cont waited, none refused");

  await settled();
  const { during } = duringLock(audit(), me);
  const others = during.filter((l) => l.client !== me && 'qemu-seconds' in l);
  t.same(others, [], 'QEMU answered nothing of another client while the lock was held, no stop or cont, no query');
  t.ok(during.some((l) => l.command === '__org.qmp-mux_query-lock' && l.outcome === 'return'), "qmp-mux's own commands answered meanwhile");
});

t.test('the lease runs out when the holder goes silent; the commands it held back run; unlock then says so', async (t) => {
  if (!needQemu(t)) return;
  const { connect, audit, settled } = await lockBench(t);
  const holder = await connect('tools');
  // Asked before the lock is taken: once it is, the 300 ms lease may have lapsed (the machine busy) before any answer.
  const me = await onlyClientNumber(holder);
  const other = await connect('tools');
  holder.send(lockCommand({ mode: 'write', 'lease-ms': 300 }, 'lock'));
  t.same(parse(await holder.nextReply()), { return: { mode: 'write', 'lease-ms': 300 }, id: 'lock' });
  other.send('{"execute":"stop","id":"waits"}');
  t.equal(await other.nextReply(), '{"return": {}, "id": "waits"}', 'the stop ran once the lease ran out');
  t.match(parse(await holder.execute('__org.qmp-mux_unlock')).error, { class: 'GenericError', desc: /^This client holds no lock: its write lock ended at \S+Z, when its lease of 300 ms ran out$/ });
  await settled();
  const { ended, after } = duringLock(audit(), me);
  t.match(ended, { why: 'lease', client: me });
  t.ok(after.some((l) => l.command === 'stop' && l.outcome === 'return'), 'the stop after it');
  await other.execute('cont');
});

t.test("the holder's disconnect releases the lock, and what waited goes on", async (t) => {
  if (!needQemu(t)) return;
  const { connect, audit, settled, mux } = await lockBench(t);
  const holder = await connect('tools');
  const other = await connect('tools');
  t.equal(await holder.execute('__org.qmp-mux_lock', { mode: 'exclusive' }), '{"return": {"lease-ms": 60000, "mode": "exclusive"}}');
  const me = await holderNumber(holder);
  other.send('{"execute":"query-status","id":"q1"}{"execute":"__org.qmp-mux_query-proxy","id":"own"}{"execute":"query-name","id":"q2"}');
  await eventually(() => mux.mux.describe().lock?.waitingCommands === 3, 'all three waiting: the own command behind the query, in order');
  t.same(other.lines.slice(2), [], 'nothing answered out of order');
  holder.close();
  t.match(await other.nextReply(), /^\{"return": \{"status": "running".*, "id": "q1"\}$/);
  t.match(await other.nextReply(), /^\{"return": \{.*, "id": "own"\}$/);
  t.equal(await other.nextReply(), '{"return": {}, "id": "q2"}');
  await settled();
  t.match(duringLock(audit(), me).ended, { why: 'disconnect' });
});

t.test('clients waiting for the lock get it in the order they asked', async (t) => {
  if (!needQemu(t)) return;
  const { connect, mux } = await lockBench(t);
  const first = await connect('tools');
  t.match(await first.execute('__org.qmp-mux_lock', { mode: 'write' }), /^\{"return"/);
  const waiters: TestClient[] = [];
  for (const mode of ['exclusive', 'write', 'exclusive']) {
    const c = await connect('tools');
    c.send(lockCommand({ mode, 'wait-ms': 60000 }, `lock-${waiters.length}`));
    waiters.push(c);
    await eventually(() => mux.mux.describe().lock?.waiting.length === waiters.length, `waiter ${waiters.length} in line`);
  }
  const order: number[] = (mux.mux.describe().lock?.waiting ?? []).map((w) => w.client);
  t.equal(new Set(order).size, 3);
  let holder = first;
  for (const [i, c] of waiters.entries()) {
    t.equal(await holder.execute('__org.qmp-mux_unlock'), '{"return": {}}');
    t.match(await c.nextReply(), new RegExp(`^\\{"return": \\{"lease-ms": 60000, "mode": "(write|exclusive)"\\}, "id": "lock-${i}"\\}$`), `waiter ${i} granted`);
    t.equal(mux.mux.describe().lock?.holding.party.who.client, order[i], 'the one that asked first of those left');
    t.same(mux.mux.describe().lock?.waiting.map((w) => w.client), order.slice(i + 1));
    for (const rest of waiters.slice(i + 1)) t.equal(rest.lines.length, 2, 'the others still wait');
    holder = c;
  }
  t.match(parse(await first.execute('__org.qmp-mux_lock', { mode: 'write' })).error?.desc, new RegExp(`^Cannot take a write lock: client ${order[2]} on endpoint 'tools' has held an exclusive lock since `), 'without wait-ms: refused at once, naming the holder');
  first.send(lockCommand({ mode: 'write', 'wait-ms': 100 }, 'brief'));
  t.match(parse(await first.nextReply()).error?.desc, /^Cannot take a write lock within 100 ms: client \d+ /, 'a wait that runs out');
});

t.test('commands sent behind a lock request that waits wait for its answer, even where the endpoint refuses', async (t) => {
  if (!needQemu(t)) return;
  const { connect } = await lockBench(t);
  const holder = await connect('tools');
  t.match(await holder.execute('__org.qmp-mux_lock', { mode: 'write' }), /^\{"return"/);
  const script = await connect('ops');
  script.send(`${lockCommand({ mode: 'write', 'wait-ms': 60000 }, 'l')}{"execute":"stop","id":"s"}{"execute":"query-status","id":"q"}{"execute":"cont","id":"c"}{"execute":"__org.qmp-mux_unlock","id":"u"}`);
  await eventually(async () => (parse(await holder.execute('__org.qmp-mux_query-lock')).return!.waiting as number[]).length === 1, 'the script in line');
  t.equal(script.lines.length, 2, 'nothing answered yet');
  t.equal(await holder.execute('__org.qmp-mux_unlock'), '{"return": {}}');
  const replies = [];
  for (let i = 0; i < 5; i++) replies.push(await script.nextReply());
  t.same(replies, [
    '{"return": {"lease-ms": 60000, "mode": "write"}, "id": "l"}',
    '{"return": {}, "id": "s"}',
    '{"return": {"status": "paused", "singlestep": false, "running": false}, "id": "q"}',
    '{"return": {}, "id": "c"}',
    '{"return": {}, "id": "u"}',
  ]);
});

t.test('QEMU going away ends the lock: what waited for it is told it did not run, then the connection ends', async (t) => {
  if (!needQemu(t)) return;
  const { connect, audit, settled, qemu, mux } = await lockBench(t);
  const holder = await connect('tools');
  t.match(await holder.execute('__org.qmp-mux_lock', { mode: 'write', reason: 'migrating' }), /^\{"return"/);
  const me = await holderNumber(holder);
  const other = await connect('tools');
  other.send('{"execute":"stop","id":"s"}{"execute":"query-status","id":"q"}');
  const waiter = await connect('tools');
  waiter.send(lockCommand({ mode: 'exclusive', 'wait-ms': 60000 }, 'l'));
  await eventually(() => mux.mux.describe().lock?.waiting.length === 1 && mux.mux.describe().lock?.waitingCommands === 3, 'both waiting');
  await qemu.stop();
  t.same(await other.rest(), [
    '{"id": "s", "error": {"class": "GenericError", "desc": "The command stop was not run: it was waiting for a lock when QEMU went away"}}',
    '{"id": "q", "error": {"class": "GenericError", "desc": "The command query-status was not run: it was waiting for a lock when QEMU went away"}}',
  ]);
  t.same(await waiter.rest(), ['{"id": "l", "error": {"class": "GenericError", "desc": "Cannot take an exclusive lock: QEMU went away"}}']);
  t.same(await holder.rest(), [], 'the holder: EOF, as every client gets');
  await settled();
  t.match(duringLock(audit(), me).ended, { why: 'qemu-gone', reason: 'migrating' });
});

t.test('who may lock: the policy decides (read-only endpoints may not by default), and anyone may look', async (t) => {
  if (!needQemu(t)) return;
  const { connect } = await lockBench(t);
  const ro = await connect('ro');
  t.equal(await ro.execute('__org.qmp-mux_lock', { mode: 'write' }), `{"error": {"class": "GenericError", "desc": "The command __org.qmp-mux_lock is not allowed on endpoint 'ro'"}}`);
  t.equal(await ro.execute('__org.qmp-mux_query-lock'), '{"return": {}}', 'no lock: an empty object');
  const names = (parse(await ro.execute('query-commands')).return as unknown as { name: string }[]).map((c) => c.name);
  t.ok(names.includes('__org.qmp-mux_query-lock') && !names.includes('__org.qmp-mux_lock'), 'query-commands lists what it may run');
  const tools = await connect('tools');
  const errors: [Record<string, unknown>, string][] = [
    [{}, "Parameter 'mode' is missing"],
    [{ mode: 'read' }, "Parameter 'mode' does not accept value 'read'"],
    [{ mode: 1 }, "Invalid parameter type for 'mode', expected: string"],
    [{ mode: 'write', 'wait-ms': -1 }, "Parameter 'wait-ms' expects a whole number of milliseconds from 0 to 3600000"],
    [{ mode: 'write', 'lease-ms': 0 }, "Parameter 'lease-ms' expects a whole number of milliseconds from 1 to 3600000"],
    [{ mode: 'write', 'lease-ms': 3600001 }, "Parameter 'lease-ms' expects a whole number of milliseconds from 1 to 3600000"],
    [{ mode: 'write', 'lease-ms': 1.5 }, "Parameter 'lease-ms' expects a whole number of milliseconds from 1 to 3600000"],
    [{ mode: 'write', 'wait-ms': '5' }, "Invalid parameter type for 'wait-ms', expected: integer"],
    [{ mode: 'write', reason: 7 }, "Invalid parameter type for 'reason', expected: string"],
    [{ mode: 'write', reason: 'x'.repeat(257) }, "Parameter 'reason' expects at most 256 characters"],
    [{ mode: 'write', wait: 5 }, "Parameter 'wait' is unexpected"],
  ];
  for (const [args, desc] of errors) t.same(parse(await tools.execute('__org.qmp-mux_lock', args)).error, { class: 'GenericError', desc }, JSON.stringify(args));
  t.same(parse(await tools.execute('__org.qmp-mux_unlock', { now: true })).error?.desc, "Parameter 'now' is unexpected");
  const oob = await connect('tools', true);
  oob.send('{"exec-oob":"__org.qmp-mux_lock","arguments":{"mode":"write"},"id":"o"}');
  t.equal(await oob.nextReply(), '{"id": "o", "error": {"class": "GenericError", "desc": "The command __org.qmp-mux_lock does not support OOB"}}', 'its answer may wait, so it cannot overtake');
  t.same(parse(await tools.execute('__org.qmp-mux_unlock')).error?.desc, 'This client holds no lock');
});

t.test('visible: query-proxy, query-clients and the metrics show the holder, who waits, and what it cost', async (t) => {
  if (!needQemu(t)) return;
  const { connect, mux } = await lockBench(t);
  const holder = await connect('tools');
  t.match(await holder.execute('__org.qmp-mux_lock', { mode: 'write', reason: 'backup of drive0', 'lease-ms': 600000 }), /^\{"return"/);
  const me = await holderNumber(holder);
  const waiter = await connect('ops');
  waiter.send(lockCommand({ mode: 'write', 'wait-ms': 60000 }, 'l'));
  const held = await connect('tools');
  held.send('{"execute":"stop","id":"s"}');
  await eventually(() => mux.mux.describe().lock?.waitingCommands === 2, 'the waiter and the held command');
  const proxy = parse(await holder.execute('__org.qmp-mux_query-proxy')).return!;
  t.match(proxy.lock, { mode: 'write', client: me, endpoint: 'tools', peer: `local#${me}`, reason: 'backup of drive0', since: /Z$/, granted: true, 'lease-ms': 600000, waiting: [Number], 'waiting-commands': 2 });
  t.ok((proxy.lock as { 'lease-left-ms': number })['lease-left-ms'] <= 600000);
  const clients = parse(await holder.execute('__org.qmp-mux_query-clients')).return as unknown as Record<string, unknown>[];
  const byEndpoint = (e: string, c: Record<string, unknown>): boolean => c.endpoint === e;
  t.match(clients.find((c) => c.client === me), { lock: 'holds' });
  t.match(clients.find((c) => byEndpoint('ops', c)), { lock: 'waits', 'waiting-commands': 1 });
  t.match(clients.find((c) => byEndpoint('tools', c) && c.client !== me), { 'waiting-commands': 1 });
  t.notOk('lock' in clients.find((c) => byEndpoint('tools', c) && c.client !== me)!, 'a client neither holding nor waiting shows no lock member');
  const metrics = mux.mux.metrics.render();
  t.match(metrics, /qmpmux_lock_held\{mode="write"\} 1\nqmpmux_lock_held\{mode="exclusive"\} 0\n/);
  t.match(metrics, /qmpmux_locks_total\{endpoint="tools",mode="write"\} 1\n/);
  t.match(metrics, /qmpmux_lock_waits_total\{endpoint="ops"\} 1\nqmpmux_lock_waits_total\{endpoint="tools"\} 1\n/);
  t.match(metrics, /qmpmux_lock_waiting_commands 2\n/);
  t.match(metrics, /qmpmux_lock_held_seconds_total\{endpoint="tools"\} [\d.e-]+\n/);
  t.equal(await holder.execute('__org.qmp-mux_unlock'), '{"return": {}}');
  t.match(await held.nextReply(), /"id": "s"/, 'what the lock held back goes before the next holder is granted');
  t.match(await waiter.nextReply(), /"id": "l"/);
  t.equal(await waiter.execute('__org.qmp-mux_unlock'), '{"return": {}}');
  await held.execute('cont');
  const later = mux.mux.metrics.render();
  t.match(later, /qmpmux_lock_ends_total\{why="unlock"\} 2\n/);
  t.match(later, /qmpmux_lock_held\{mode="write"\} 0\n/);
  t.match(mux.mux.status(), /"counters": \{.*"locked": 0/, 'query-proxy counts refusals by locks');
});

t.test('in the order sent: a lock request behind a held command takes its turn, and what a new lock holds back waits again', async (t) => {
  if (!needQemu(t)) return;
  const { connect, audit, settled, mux } = await lockBench(t);
  const first = await connect('tools');
  t.match(await first.execute('__org.qmp-mux_lock', { mode: 'write' }), /^\{"return"/);
  const script = await connect('tools');
  script.send(`{"execute":"stop","id":"s"}${lockCommand({ mode: 'write', 'wait-ms': 60000 }, 'l')}{"execute":"cont","id":"c"}{"execute":"__org.qmp-mux_unlock","id":"u"}`);
  await eventually(() => mux.mux.describe().lock?.waitingCommands === 4, "the script's four commands waiting, behind its stop");
  const late = await connect('tools');
  late.send('{"execute":"stop","id":"late"}');
  await eventually(() => mux.mux.describe().lock?.waitingCommands === 5, 'the late stop waiting too');
  t.equal(await first.execute('__org.qmp-mux_unlock'), '{"return": {}}');
  const replies = [];
  for (let i = 0; i < 4; i++) replies.push(await script.nextReply());
  t.same(replies, ['{"return": {}, "id": "s"}', '{"return": {"lease-ms": 60000, "mode": "write"}, "id": "l"}', '{"return": {}, "id": "c"}', '{"return": {}, "id": "u"}']);
  t.equal(await late.nextReply(), '{"return": {}, "id": "late"}');
  await late.execute('cont');
  await settled();
  const order = audit()
    .filter((l) => l.type === 'lock' || l.command === 'stop' || l.command === 'cont')
    .map((l) => (l.type === 'lock' ? `${l.action as string}` : `${l.command as string} ${l.id as string}`));
  t.same(
    order,
    ['granted', 'ended', 'granted', 'stop s', 'cont c', 'ended', 'stop late', 'cont undefined'],
    "the script's unlock waited for its cont; the late stop, released by the first lock's end, waited again for the script's lock",
  );
});

t.test('qmp-mux stopping: what waited for a lock is told it was not run', async (t) => {
  if (!needQemu(t)) return;
  const { connect, mux } = await lockBench(t);
  const holder = await connect('tools');
  t.match(await holder.execute('__org.qmp-mux_lock', { mode: 'exclusive' }), /^\{"return"/);
  const other = await connect('tools');
  other.send('{"execute":"query-status","id":"q"}');
  const waiter = await connect('tools');
  waiter.send(lockCommand({ mode: 'write', 'wait-ms': 60000 }, 'l'));
  await eventually(() => mux.mux.describe().lock?.waitingCommands === 2, 'both waiting');
  await mux.stop();
  t.same(await other.rest(), ['{"id": "q", "error": {"class": "GenericError", "desc": "The command query-status was not run: it was waiting for a lock when qmp-mux stopped"}}']);
  t.same(await waiter.rest(), ['{"id": "l", "error": {"class": "GenericError", "desc": "Cannot take a write lock: qmp-mux is stopping"}}']);
});
