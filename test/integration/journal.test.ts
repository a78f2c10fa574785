import t from 'tap';
import { POLICY_PRESETS } from '../../src/policy/presets.ts';
import { startMux } from '../fixtures/mux.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { TestClient } from '../fixtures/qmp-client.ts';
import { socketDir } from '../fixtures/tmp.ts';

/** The event journal, live sequence numbers and per-client subscriptions, through qmp-mux in front of a real QEMU. */

interface Journal {
  return: { dropped: boolean; last: number; events: { seq: number; event: { event: string } }[] };
}

const readOnly = { policy: { allow: [...POLICY_PRESETS['read-only'].allow], deny: [...POLICY_PRESETS['read-only'].deny] } };

/** Runs `stop` then `cont` on `c` (events STOP then RESUME). */
async function stopAndGo(c: TestClient): Promise<void> {
  await c.execute('stop');
  await c.execute('cont');
}

t.test('query-events: every event numbered, kept, asked for since a number, filtered', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t);
  const mux = await startMux(t, qemu.monitors[0]!, { endpoints: [{}, { events: ['RESUME'] }] });
  const a = await TestClient.connect(mux.path);
  await a.negotiate();
  await stopAndGo(a);
  await stopAndGo(a);
  const all = JSON.parse(await a.execute('__org.qmp-mux_query-events', undefined, 'q')) as Journal & { id: string };
  t.equal(all.id, 'q');
  t.same(all.return.events.map((e) => `${e.seq} ${e.event.event}`), ['1 STOP', '2 RESUME', '3 STOP', '4 RESUME']);
  t.equal(all.return.last, 4);
  t.equal(all.return.dropped, false);
  const live = a.lines.filter((l) => l.includes('"event": "'));
  const raw = await a.execute('__org.qmp-mux_query-events', { since: 2 });
  t.ok(raw.includes(live[2]!) && raw.includes(live[3]!), 'each event exactly as QEMU sent it (and as clients got it live)');
  t.same((JSON.parse(raw) as Journal).return.events.map((e) => e.seq), [3, 4], 'since 2');
  const stops = JSON.parse(await a.execute('__org.qmp-mux_query-events', { events: ['ST*'] })) as Journal;
  t.same(stops.return.events.map((e) => e.seq), [1, 3], 'by name');
  const b = await TestClient.connect(mux.endpoints[1]!.address);
  await b.negotiate();
  const bounded = JSON.parse(await b.execute('__org.qmp-mux_query-events')) as Journal;
  t.same(bounded.return.events.map((e) => e.event.event), ['RESUME', 'RESUME'], 'within the endpoint\'s own filter');
  t.equal(bounded.return.last, 4, 'last counts every event');
  t.match(await a.execute('__org.qmp-mux_query-events', { since: -1 }, 1), /"desc": "Parameter 'since' expects uint64"/);
  t.match(await a.execute('__org.qmp-mux_query-events', { sinse: 1 }, 2), /"desc": "Parameter 'sinse' is unexpected"/);
});

t.test('a client that restarts, and a QEMU that restarts, catch up with no gap and no duplicate', async (t) => {
  if (!needQemu(t)) return;
  const dir = socketDir(t);
  const first = await startQemu(t, { dir, names: ['vm.qmp'] });
  const mux = await startMux(t, first.monitors[0]!, { backoff: { initialMs: 5, maxMs: 20 } });
  const c = await TestClient.connect(mux.path);
  await c.negotiate();
  await stopAndGo(c);
  const cursor = (JSON.parse(await c.execute('__org.qmp-mux_query-events')) as Journal).return.last;
  c.close();
  // Meanwhile, with nobody listening: events happen, and QEMU restarts.
  const other = await TestClient.connect(mux.path);
  await other.negotiate();
  await stopAndGo(other);
  await first.stop();
  await other.rest();
  await startQemu(t, { dir, names: ['vm.qmp'] });
  const back = await TestClient.connect(mux.path);
  await back.negotiate();
  await back.execute('stop');
  const caughtUp = JSON.parse(await back.execute('__org.qmp-mux_query-events', { since: cursor })) as Journal;
  t.same(
    caughtUp.return.events.map((e) => `${e.seq} ${e.event.event}`),
    [`${cursor + 1} STOP`, `${cursor + 2} RESUME`, `${cursor + 3} STOP`],
    'what happened while it was away, across the QEMU restart: numbering goes on',
  );
  t.equal(caughtUp.return.dropped, false);
  const again = JSON.parse(await back.execute('__org.qmp-mux_query-events', { since: caughtUp.return.last })) as Journal;
  t.same(again.return.events, [], 'asking since the last reply\'s last: nothing twice');
  const proxy = (JSON.parse(await back.execute('__org.qmp-mux_query-proxy')) as { return: { 'last-event': number; counters: { events: number } } }).return;
  t.equal(proxy['last-event'], cursor + 3, 'query-proxy: the newest number');
  t.equal(proxy.counters.events, cursor + 3, 'query-proxy: every event counted, across the QEMU restart');
});

t.test('a ring too small for what was asked says so', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t);
  const mux = await startMux(t, qemu.monitors[0]!, { journal: { maxEvents: 2 } });
  const c = await TestClient.connect(mux.path);
  await c.negotiate();
  await stopAndGo(c);
  await stopAndGo(c);
  const old = JSON.parse(await c.execute('__org.qmp-mux_query-events', { since: 1 })) as Journal;
  t.same(old.return.events.map((e) => e.seq), [3, 4]);
  t.equal(old.return.dropped, true, 'event 2 is gone: the client knows it missed something');
  t.equal((JSON.parse(await c.execute('__org.qmp-mux_query-events', { since: 2 })) as Journal).return.dropped, false, 'since 2: nothing missed');
});

t.test('live sequence numbers on an endpoint that asks; QEMU\'s bytes unchanged elsewhere', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t);
  const mux = await startMux(t, qemu.monitors[0]!, { endpoints: [{}, { eventSequence: true }] });
  const plain = await TestClient.connect(mux.endpoints[0]!.address);
  await plain.negotiate();
  const numbered = await TestClient.connect(mux.endpoints[1]!.address);
  await numbered.negotiate();
  await stopAndGo(plain);
  await numbered.waitLines(4);
  const [stop, resume] = [numbered.lines[2]!, numbered.lines[3]!];
  t.match(stop, /^\{"timestamp": \{"seconds": \d+, "microseconds": \d+\}, "event": "STOP", "__org\.qmp-mux_seq": 1\}$/);
  t.match(resume, /"event": "RESUME", "__org\.qmp-mux_seq": 2\}$/);
  const plainStop = plain.lines.find((l) => l.includes('"STOP"'))!;
  t.equal(stop, plainStop.replace(/\}$/, ', "__org.qmp-mux_seq": 1}'), 'QEMU\'s bytes, the number added last');
  t.notMatch(plainStop, /seq/, 'the other endpoint gets QEMU\'s bytes as they were');
});

t.test('set-events: one client narrows what it receives; the others are untouched', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t);
  const mux = await startMux(t, qemu.monitors[0]!, { endpoints: [readOnly, {}] });
  const picky = await TestClient.connect(mux.endpoints[0]!.address);
  await picky.negotiate();
  const all = await TestClient.connect(mux.endpoints[1]!.address);
  await all.negotiate();
  t.equal(await picky.execute('__org.qmp-mux_set-events', { events: ['RES*'] }, 's'), '{"return": {}, "id": "s"}', 'allowed on a read-only endpoint: it changes only what the caller receives');
  const clients = JSON.parse(await all.execute('__org.qmp-mux_query-clients')) as { return: { events: string[] }[] };
  t.same(clients.return.map((c) => c.events), [['RES*'], ['*']], 'query-clients shows each client\'s choice');
  await stopAndGo(all);
  t.match(await picky.next(), /"event": "RESUME"/, 'RESUME, no STOP');
  t.same(all.lines.filter((l) => l.includes('"event"')).map((l) => /"event": "(\w+)"/.exec(l)![1]), ['STOP', 'RESUME'], 'the other client gets both');
  await picky.execute('__org.qmp-mux_set-events', { events: [] });
  await stopAndGo(all);
  await picky.execute('__org.qmp-mux_set-events', { events: ['*'] });
  await stopAndGo(all);
  // Greeting, negotiation, three set-events replies, and three events.
  await picky.waitLines(8);
  t.same(picky.lines.filter((l) => l.includes('"event"')).map((l) => /"event": "(\w+)"/.exec(l)![1]), ['RESUME', 'STOP', 'RESUME'], 'none while [], then everything again');
  t.match(await picky.execute('__org.qmp-mux_set-events', undefined, 'x'), /"desc": "Parameter 'events' is missing"/);
});
