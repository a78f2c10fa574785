/**
 * Scenarios 8 and 9: what one client can cost the others, measured against
 * what QEMU alone takes to read that client's commands, in the same run.
 */
import { parseArgs } from '../../src/cli/args.ts';
import { loadConfigFile } from '../../src/config/file.ts';
import { memoryBound } from '../../src/config/memory.ts';
import { DEFAULTS, READ_ONLY_LIMITS } from '../../src/config/options.ts';
import { resolveOptions } from '../../src/config/resolve.ts';
import { BenchClient, sequential } from './client.ts';
import { rssBytes, startHostile, startMux } from './processes.ts';
import { median, percentile, round, sortedCopy } from './stats.ts';
import type { Row } from './main.ts';

const QUERY = '{"execute":"query-status"}';

/** `{"execute":NAME,"arguments":{"a":"xxx"}}` of exactly `size` bytes, as hostile-clients.ts sends it. */
function sized(verb: string, name: string, size: number): string {
  const frame = `{"${verb}":"${name}","arguments":{"a":""}}`.length;
  return `{"${verb}":"${name}","arguments":{"a":"${'x'.repeat(size - frame)}"}}`;
}

/** Median ms QEMU itself takes to read and answer `command`, on its own monitor. */
async function qemuTime(direct: string, command: string, oob: boolean): Promise<number> {
  const c = await BenchClient.connect(direct, oob ? 'oob' : 'plain');
  await sequential(c, command, 5);
  const { latencies } = await sequential(c, command, 40);
  await c.close();
  return median([...latencies]) / 1000;
}

/** Fewest commands a latency is taken over, however long they take. */
const MIN_SAMPLES = 10;

/**
 * p50 and p99 latency, µs, of `count` query-status one at a time, or of as
 * many as `ms` allow (at least MIN_SAMPLES): where QEMU reads slowly, one
 * command can wait seconds behind others.
 */
async function latency(c: BenchClient, count: number, ms = Infinity): Promise<{ p50: number; p99: number; samples: number }> {
  const latencies: number[] = [];
  const deadline = performance.now() + ms;
  while (latencies.length < count && (latencies.length < MIN_SAMPLES || performance.now() < deadline)) latencies.push(...(await sequential(c, QUERY, 1)).latencies);
  const sorted = sortedCopy(latencies);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), samples: latencies.length };
}

/**
 * Scenario 8: a well-behaved client on one endpoint, alone and then beside
 * a read-only client sending the largest commands it may, back to back (and
 * again with exec-oob). Target: its p99 at most its p99 alone plus twice
 * what QEMU alone takes to read one such command.
 */
export async function hostileNeighbour(direct: string, upstream: string, row: (r: Row) => void): Promise<Record<string, unknown>> {
  const mux = await startMux(upstream, 'hostile', [{ name: 'ro', policy: 'read-only' }, { name: 'admin' }]);
  const out: Record<string, unknown> = {};
  const variants = [
    { label: 'in-band', mode: 'pipeline', verb: 'execute', name: 'query-status', size: READ_ONLY_LIMITS.maxCommandBytes, oob: false },
    // qmp-mux keeps 15 bytes of an exec-oob command's 1 KiB for its own id.
    { label: 'exec-oob', mode: 'oob', verb: 'exec-oob', name: 'query-yank', size: 1024 - 15, oob: true },
  ] as const;
  for (const v of variants) {
    const victim = await BenchClient.connect(mux.paths.admin!);
    await sequential(victim, QUERY, 200);
    const rounds = 3;
    const alone: number[] = [];
    const beside: number[] = [];
    let replies = 0;
    for (let r = 0; r < rounds; r++) {
      alone.push((await latency(victim, 1500)).p99);
      const hostile = await startHostile(mux.paths.ro!, 1, v.mode, v.size, 32);
      await sequential(victim, QUERY, 50);
      beside.push((await latency(victim, 1500)).p99);
      replies += await hostile.stop();
    }
    await victim.close();
    const readMs = await qemuTime(direct, sized(v.verb, v.name, v.size), v.oob);
    const p99Alone = median(alone) / 1000;
    const p99Beside = median(beside) / 1000;
    const limit = p99Alone + 2 * readMs;
    const costInReads = (p99Beside - p99Alone) / readMs;
    out[v.label] = { commandBytes: v.size, qemuReadMs: readMs, p99AloneMs: alone.map((x) => x / 1000), p99BesideMs: beside.map((x) => x / 1000), hostileReplies: replies, addedP99InQemuReads: costInReads };
    row({
      scenario: `8 hostile neighbour, ${v.label}`,
      measure: `p99 ms alone | beside ${v.size}-byte commands (QEMU reads one in ${round(readMs, 2)} ms)`,
      direct: round(readMs, 2),
      mux: `${round(p99Alone, 2)} | ${round(p99Beside, 2)}`,
      ratio: `+${round(costInReads)} reads`,
      target: '<= alone + 2 reads',
      met: p99Beside <= limit,
    });
  }
  await mux.stop();
  return out;
}

/**
 * Scenario 9: 16 clients of an endpoint with the default limits pipelining
 * their largest commands and never reading a reply, beside a well-behaved
 * client. qmp-mux's resident memory, sampled throughout, must stay within
 * its baseline plus the README's bound for this configuration, and the
 * well-behaved client must still be answered.
 */
export async function memoryUnderPressure(direct: string, upstream: string, row: (r: Row) => void): Promise<Record<string, unknown>> {
  const hostileClients = 16;
  const endpoints = [
    { name: 'bulk', maxClients: hostileClients },
    { name: 'admin', maxClients: 1 },
  ];
  const mux = await startMux(upstream, 'pressure', endpoints);
  const victim = await BenchClient.connect(mux.paths.admin!);
  await sequential(victim, QUERY, 200);
  const alone = await latency(victim, 1500);
  await new Promise((r) => setTimeout(r, 500));
  const baseline = rssBytes(mux.pid);
  let peak = baseline;
  const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(mux.pid))), 20);
  const size = DEFAULTS.limits.maxCommandBytes;
  const hostile = await startHostile(mux.paths.bulk!, hostileClients, 'noread', size, 0);
  // 100 commands, or two minutes' worth: each waits for a turn of every hostile client.
  const served = await latency(victim, 100, 120_000);
  clearInterval(sampler);
  await hostile.stop();
  await victim.close();
  await mux.stop();
  const readMs = await qemuTime(direct, sized('execute', 'query-status', size), false);
  const bound = memoryBound(resolveOptions(parseArgs([]), loadConfigFile(mux.config)));
  const grew = peak - baseline;
  row({
    scenario: '9 memory under pressure',
    measure: `RSS MiB: baseline | peak, ${hostileClients} clients pipelining ${size}-byte commands unread (bound: baseline + ${round(bound.total / 2 ** 20, 0)})`,
    direct: '',
    mux: `${round(baseline / 2 ** 20, 0)} | ${round(peak / 2 ** 20, 0)}`,
    ratio: `${round(grew / bound.total)} of bound`,
    target: '<= bound',
    met: grew <= bound.total,
  });
  // Served fairly: a turn of each client with commands queued (16), and the one in flight.
  const reads = hostileClients + 1;
  row({
    scenario: '9 memory under pressure',
    measure: `well-behaved client: p99 ms alone | meanwhile, over ${served.samples} commands (QEMU reads one ${size}-byte command in ${round(readMs, 1)} ms)`,
    direct: round(readMs, 1),
    mux: `${round(alone.p99 / 1000, 2)} | ${round(served.p99 / 1000, 2)}`,
    ratio: `+${round((served.p99 - alone.p99) / 1000 / readMs)} reads`,
    target: `<= alone + ${reads} reads`,
    met: served.p99 / 1000 <= alone.p99 / 1000 + reads * readMs,
  });
  return { baselineBytes: baseline, peakBytes: peak, bound, victimAloneUs: alone, victimUs: served, qemuReadMs: readMs };
}
