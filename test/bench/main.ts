/**
 * qmp-mux benchmarks (`npm run bench`; not part of `npm test`). Every figure
 * is measured next to a direct QEMU connection in the same run and reported
 * as a ratio, with the absolute numbers. Writes the figures as JSON.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULTS } from '../../src/config/options.ts';
import { BenchClient, pipelined, sequential } from './client.ts';
import { eventFanOut } from './events.ts';
import { hostileNeighbour, memoryUnderPressure } from './hostile.ts';
import { drive, loadInTurns, QUERY, type Measured } from './load.ts';
import { lockCost } from './lock-cost.ts';
import { rssBytes, startEcho, startFakeUpstream, startGarbage, startMinimalMux, startMux, startQemu, startRelay, stopAll } from './processes.ts';
import { median, percentile, round, sortedCopy } from './stats.ts';
import { tlsOneClient } from './tls.ts';

/** QUERY as a proxy that put an id of its own on every command would send it: 7 bytes more for QEMU to read, one read per byte. */
const QUERY_WITH_ID = '{"execute":"query-status","id":0}';

interface Row {
  scenario: string;
  measure: string;
  direct: number | string;
  mux: number | string;
  ratio: number | string;
  target: string;
  met: boolean | '';
}
const rows: Row[] = [];
const figures: Record<string, unknown> = {};

function row(r: Row): void {
  rows.push(r);
  console.log(`  ${r.scenario} | ${r.measure}: direct ${r.direct}, qmp-mux ${r.mux}, ratio ${r.ratio} (target ${r.target})${r.met === '' ? '' : r.met ? ' met' : ' NOT met'}`);
}

async function oneClient(direct: string, relay: string, mux: string): Promise<void> {
  const rounds = 5;
  const count = 2000;
  const clients = [await BenchClient.connect(direct), await BenchClient.connect(relay), await BenchClient.connect(mux)] as const;
  const [toDirect, toRelay, toMux] = clients;
  // qmp-mux sends QEMU the command as the client wrote it (no id added): the bare relay, which adds only the hop, is its bound.
  const runs = {
    direct: { client: toDirect, command: QUERY },
    relay: { client: toRelay, command: QUERY },
    mux: { client: toMux, command: QUERY },
  };
  type Key = keyof typeof runs;
  const keys = Object.keys(runs) as Key[];
  const rates = Object.fromEntries(keys.map((k) => [k, [] as number[]])) as Record<Key, number[]>;
  const lats = Object.fromEntries(keys.map((k) => [k, [] as number[]])) as Record<Key, number[]>;
  for (const c of clients) await sequential(c, QUERY, 200);
  for (let r = 0; r < rounds; r++) {
    for (const key of keys) {
      const { latencies, seconds } = await sequential(runs[key].client, runs[key].command, count);
      rates[key].push(count / seconds);
      lats[key].push(...latencies);
    }
  }
  for (const c of clients) c.close();
  const sorted = Object.fromEntries(keys.map((k) => [k, sortedCopy(lats[k])])) as Record<Key, Float64Array>;
  const vsDirect = (k: Key): number => median(rates[k].map((x, i) => x / rates.direct[i]!));
  const ratio = vsDirect('mux');
  const p = (k: Key, q: number): number => percentile(sorted[k], q);
  figures.oneClient = {
    rounds,
    count,
    commandsPerSecond: rates,
    ratioMedian: ratio,
    relayRatioMedian: vsDirect('relay'),
    vsRelayMedian: median(rates.mux.map((x, i) => x / rates.relay[i]!)),
    latencyUs: Object.fromEntries(keys.map((k) => [k, { p50: p(k, 50), p99: p(k, 99) }])),
  };
  const vsRelay = median(rates.mux.map((x, i) => x / rates.relay[i]!));
  row({ scenario: '1 one client', measure: 'commands/s', direct: round(median(rates.direct), 0), mux: round(median(rates.mux), 0), ratio: round(ratio), target: '', met: '' });
  row({ scenario: '1 one client', measure: 'bare relay commands/s (the hop alone)', direct: round(median(rates.direct), 0), mux: round(median(rates.relay), 0), ratio: round(vsDirect('relay')), target: '', met: '' });
  row({ scenario: '1 one client', measure: 'qmp-mux vs bare relay', direct: round(median(rates.relay), 0), mux: round(median(rates.mux), 0), ratio: round(vsRelay), target: '>= 0.97', met: vsRelay >= 0.97 });
  row({ scenario: '1 one client', measure: 'latency p50 µs (bare relay)', direct: round(p('direct', 50), 0), mux: `${round(p('mux', 50), 0)} (${round(p('relay', 50), 0)})`, ratio: round(p('mux', 50) / p('direct', 50)), target: '', met: '' });
  row({ scenario: '1 one client', measure: 'latency p99 µs (bare relay)', direct: round(p('direct', 99), 0), mux: `${round(p('mux', 99), 0)} (${round(p('relay', 99), 0)})`, ratio: round(p('mux', 99) / p('direct', 99)), target: '', met: '' });
}

async function manyClients(direct: string, mux: string): Promise<void> {
  const rounds = 3;
  const ms = 1500;
  const counts = [1, 2, 4, 8, 32];
  const single: number[] = [];
  const ceiling: number[] = [];
  const ceilingWithIds: number[] = [];
  const rates: Record<number, number[]> = Object.fromEntries(counts.map((k) => [k, []]));
  const muxClients = await Promise.all(Array.from({ length: Math.max(...counts) }, () => BenchClient.connect(mux)));
  // Interleaved rounds: the machine's noise then hits baseline and qmp-mux alike.
  for (let r = 0; r < rounds; r++) {
    // A QEMU monitor serves one client at a time: one direct connection after the other.
    const d = await BenchClient.connect(direct);
    const s = await drive([d], ms);
    single.push(s.done / s.seconds);
    await d.close();
    const o = await BenchClient.connect(direct, 'oob');
    const ceilingCount = 6000;
    ceiling.push(ceilingCount / (await pipelined(o, QUERY, ceilingCount, 32)));
    ceilingWithIds.push(ceilingCount / (await pipelined(o, QUERY_WITH_ID, ceilingCount, 32)));
    await o.close();
    for (const k of counts) {
      const m = await drive(muxClients.slice(0, k), ms);
      rates[k]!.push(m.done / m.seconds);
    }
  }
  muxClients.forEach((c) => void c.close());
  const perK: Record<string, unknown> = {};
  for (const k of counts) {
    const rate = median(rates[k]!);
    const vsSingle = median(rates[k]!.map((x, i) => x / single[i]!));
    const vsCeiling = median(rates[k]!.map((x, i) => x / ceiling[i]!));
    const vsCeilingWithIds = median(rates[k]!.map((x, i) => x / ceilingWithIds[i]!));
    perK[k] = { commandsPerSecond: rates[k], vsOneDirect: vsSingle, vsCeiling, vsCeilingWithIds };
    row({
      scenario: `2 ${k} clients`,
      measure: 'total commands/s',
      direct: round(median(single), 0),
      mux: round(rate, 0),
      ratio: `${round(vsSingle)}x one direct, ${round(vsCeiling)}x ceiling (${round(vsCeilingWithIds)}x with ids)`,
      target: k === 8 ? '>= 0.95x ceiling' : '',
      met: k === 8 ? vsCeiling >= 0.95 : '',
    });
  }
  figures.manyClients = { rounds, singleDirect: single, pipelinedCeiling: ceiling, pipelinedCeilingWithIds: ceilingWithIds, throughput: perK };
  row({ scenario: '2 ceiling', measure: 'direct pipelined (oob) commands/s', direct: round(median(ceiling), 0), mux: '', ratio: '', target: '', met: '' });
  row({ scenario: '2 ceiling', measure: 'the same, every command with an id (what ids would cost)', direct: round(median(ceilingWithIds), 0), mux: '', ratio: round(median(ceilingWithIds.map((x, i) => x / ceiling[i]!))), target: '', met: '' });
}

async function largeReply(direct: string, relay: string, mux: string): Promise<void> {
  const schema = '{"execute":"query-qmp-schema"}';
  const clients = { direct: await BenchClient.connect(direct), relay: await BenchClient.connect(relay), mux: await BenchClient.connect(mux) };
  const times = { direct: [] as number[], relay: [] as number[], mux: [] as number[] };
  let bytes = 0;
  for (let r = 0; r < 3; r++) for (const c of Object.values(clients)) await c.request(schema);
  // QEMU's own time for it varies by a third from one call to the next here: enough rounds for steady medians.
  for (let r = 0; r < 40; r++) {
    for (const key of Object.keys(times) as (keyof typeof times)[]) {
      const start = process.hrtime.bigint();
      const reply = await clients[key].request(schema);
      times[key].push(Number(process.hrtime.bigint() - start) / 1e6);
      bytes = reply.length;
    }
  }
  for (const c of Object.values(clients)) c.close();
  const ratio = median(times.mux) / median(times.direct);
  figures.largeReply = { bytes, ms: times, ratioMedian: ratio, relayRatioMedian: median(times.relay) / median(times.direct) };
  row({ scenario: '3 query-qmp-schema', measure: `round trip ms (${Math.round(bytes / 1024)} KiB)`, direct: round(median(times.direct)), mux: round(median(times.mux)), ratio: round(ratio), target: '<= 1.10', met: ratio <= 1.1 });
  row({ scenario: '3 query-qmp-schema', measure: 'bare relay round trip ms (bound)', direct: round(median(times.direct)), mux: round(median(times.relay)), ratio: round(median(times.relay) / median(times.direct)), target: '', met: '' });
}

async function capacity(): Promise<void> {
  const fake = await startFakeUpstream();
  const mux = await startMux(fake, 'capacity');
  const echo = await startEcho();
  const minimal = await startMinimalMux(await startFakeUpstream());
  // The same, held to qmp-mux's default window: what QEMU's queue of 8 costs any multiplexer.
  const windowed = await startMinimalMux(await startFakeUpstream(), DEFAULTS.window);
  const out: Record<string, unknown> = {};
  for (const k of [1, 8, 64]) {
    const [m, e, least, leastWindowed] = (await loadInTurns([mux, echo, minimal, windowed], k)) as [Measured, Measured, Measured, Measured];
    out[k] = { mux: m, echoFloor: e, minimalMultiplexer: least, minimalMultiplexerWindowed: leastWindowed };
    row({
      scenario: `4 capacity, ${k} clients`,
      measure: 'commands/s | CPU µs per command (bare echo server; minimal multiplexer; the same with the window)',
      direct: '',
      mux: `${round(m.commandsPerSecond, 0)} | ${round(m.usPerCommand, 1)} (${round(e.usPerCommand, 1)}; ${round(least.usPerCommand, 1)}; ${round(leastWindowed.usPerCommand, 1)})`,
      ratio: `${round(m.usPerCommand / e.usPerCommand)}x echo, ${round(m.usPerCommand / least.usPerCommand)}x minimal, ${round(m.usPerCommand / leastWindowed.usPerCommand)}x windowed`,
      target: k === 64 ? '<= 1.5x echo, <= 1.15x minimal' : '',
      met: k === 64 ? m.usPerCommand / e.usPerCommand <= 1.5 && m.usPerCommand / least.usPerCommand <= 1.15 : '',
    });
  }
  figures.capacity = out;
  await mux.stop();
}

async function idleClients(upstream: string): Promise<void> {
  const mux = await startMux(upstream, 'idle');
  const clients: BenchClient[] = [];
  const measure = async (): Promise<number> => {
    await new Promise((r) => setTimeout(r, 1500));
    return rssBytes(mux.pid);
  };
  const rss: Record<number, number> = { 0: await measure() };
  for (const target of [1000, 10000]) {
    while (clients.length < target) {
      const batch = Math.min(250, target - clients.length);
      clients.push(...(await Promise.all(Array.from({ length: batch }, () => BenchClient.connect(mux.path)))));
    }
    rss[target] = await measure();
  }
  clients.forEach((c) => c.close());
  await mux.stop();
  const perClient = (rss[10000]! - rss[0]!) / 10000;
  figures.idleClients = { rssBytes: rss, bytesPerClient: perClient };
  row({ scenario: '6 idle clients', measure: 'RSS MiB at 0 | 1,000 | 10,000', direct: '', mux: [0, 1000, 10000].map((n) => round(rss[n]! / 2 ** 20, 1)).join(' | '), ratio: '', target: '', met: '' });
  row({ scenario: '6 idle clients', measure: 'KiB per idle client', direct: '', mux: round(perClient / 1024, 1), ratio: '', target: '< 32 KiB', met: perClient < 32 * 1024 });
}

/** A well-behaved client's latency alone, then beside clients sending garbage as fast as they can. */
async function isolation(): Promise<void> {
  const fake = await startFakeUpstream();
  const mux = await startMux(fake, 'isolation');
  const count = 3000;
  const client = await BenchClient.connect(mux.path);
  await sequential(client, QUERY, 300);
  const alone = sortedCopy([...(await sequential(client, QUERY, count)).latencies]);
  const garbage = await startGarbage(mux.path, 20);
  await new Promise((r) => setTimeout(r, 500));
  const beside = sortedCopy([...(await sequential(client, QUERY, count)).latencies]);
  const errorsPerSecond = await garbage.stop();
  client.close();
  await mux.stop();
  const p = (s: Float64Array, q: number): number => round(percentile(s, q), 0);
  figures.isolation = { count, aloneUs: { p50: p(alone, 50), p99: p(alone, 99) }, besideUs: { p50: p(beside, 50), p99: p(beside, 99) }, garbageErrorReplies: errorsPerSecond };
  row({ scenario: '7 isolation', measure: 'latency p50 µs: alone | beside 20 garbage senders', direct: '', mux: `${p(alone, 50)} | ${p(beside, 50)}`, ratio: round(percentile(beside, 50) / percentile(alone, 50)), target: '', met: '' });
  row({ scenario: '7 isolation', measure: 'latency p99 µs: alone | beside 20 garbage senders', direct: '', mux: `${p(alone, 99)} | ${p(beside, 99)}`, ratio: round(percentile(beside, 99) / percentile(alone, 99)), target: '', met: '' });
  row({ scenario: '7 isolation', measure: 'error replies/s the garbage senders got meanwhile', direct: '', mux: round(errorsPerSecond, 0), ratio: '', target: '', met: '' });
}

/** Scenario numbers given on the command line (`npm run bench -- 1 4`), or all. */
const only = new Set(process.argv.slice(2).map(Number));
const wanted = (n: number): boolean => only.size === 0 || only.has(n);

async function main(): Promise<void> {
  const started = Date.now();
  console.log('qmp-mux benchmark (2 cores shared: read ratios, not absolutes)');
  const [direct, behindMux, behindRelay, behindTls] = (await startQemu(4)) as [string, string, string, string];
  const mux = await startMux(behindMux, 'main');
  const relay = await startRelay(behindRelay);
  if (wanted(1)) {
    console.log('scenario 1: one client, one command at a time');
    await oneClient(direct, relay, mux.path);
    console.log('scenario 1 over TLS: the same through a TLS endpoint, beside plaintext TCP');
    figures.oneClientTls = await tlsOneClient(behindTls, row);
  }
  if (wanted(2)) {
    console.log('scenario 2: several clients, one command at a time each');
    await manyClients(direct, mux.path);
  }
  if (wanted(3)) {
    console.log('scenario 3: a large reply');
    await largeReply(direct, relay, mux.path);
  }
  await mux.stop();
  if (wanted(4)) {
    console.log('scenario 4: qmp-mux alone, fake upstream answering at once');
    await capacity();
  }
  if (wanted(5)) {
    console.log('scenario 5: event fan-out');
    const events = await eventFanOut();
    figures.events = events.figures;
    for (const r of events.rows) row(r);
  }
  if (wanted(6)) {
    console.log('scenario 6: idle clients');
    await idleClients(behindMux);
  }
  if (wanted(7)) {
    console.log('scenario 7: isolation from clients sending garbage');
    await isolation();
  }
  if (wanted(8)) {
    console.log('scenario 8: a hostile neighbour sending the largest commands it may');
    figures.hostileNeighbour = await hostileNeighbour(direct, behindMux, row);
  }
  if (wanted(9)) {
    console.log('scenario 9: memory under pressure');
    figures.memoryUnderPressure = await memoryUnderPressure(direct, behindMux, row);
  }
  if (wanted(10)) {
    console.log('scenario 10: the lock check, in the loads of scenarios 1, 2 and 4');
    figures.lockCost = await lockCost(row);
  }
  stopAll();

  const dir = 'bench-results';
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), node: process.version, seconds: (Date.now() - started) / 1000, rows, figures }, null, 2));
  console.log('');
  console.table(rows.map((r) => ({ ...r, met: r.met === '' ? '' : r.met ? 'yes' : 'NO' })));
  console.log(`figures written to ${file} (${round((Date.now() - started) / 1000, 1)} s)`);
}

// Interrupted (Ctrl-C, a timeout's kill): nothing the run started stays behind.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    stopAll();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

main().catch((e: unknown) => {
  stopAll();
  console.error(e);
  process.exit(1);
});

export type { Row };
