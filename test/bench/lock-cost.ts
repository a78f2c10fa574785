/**
 * Scenario 10: what the lock check costs each command, in the loads of
 * scenarios 1 (one client, one command at a time, a real QEMU), 2 (eight
 * clients, a real QEMU) and 4 (CPU per command, 64 clients, a fake QEMU
 * that answers at once). Each load runs on one qmp-mux process, the runs
 * interleaved in many short rounds, each in another order (a shared
 * machine's load comes and goes, and must fall on every variant alike):
 * with no lock, twice (the second run's ratio to the first is the noise:
 * what two identical runs differ by), and with a
 * write lock held by another, idle client, so that every `query-status`
 * is judged against it and let through. With QMP_MUX_BENCH_BASELINE set
 * to another build's dist/cli/main.js (one from before locks), the same
 * loads run in the same rounds through that build, and through a second
 * process of this one to compare it with: what having the check at all
 * costs.
 */
import { changesState, type LockParty } from '../../src/mux/lock-model.ts';
import { MonitorLock } from '../../src/mux/monitor-lock.ts';
import type { Row } from './main.ts';
import { BenchClient, sequential } from './client.ts';
import { drive, load, QUERY } from './load.ts';
import { startFakeUpstream, startMux, startQemu, type MuxProcess } from './processes.ts';
import { median, percentile, round, sortedCopy } from './stats.ts';

/**
 * `none`, `held` (a write lock held by another client) and `again` run on
 * one process; `twin` is another process of this build, `baseline` one of
 * the build without locks: processes differ by more than runs of one do.
 */
type Variant = 'none' | 'held' | 'again' | 'twin' | 'baseline';

interface Target {
  mux: MuxProcess;
  /** Takes and releases a write lock as another client (on `none`'s process). */
  take?: () => Promise<void>;
  release?: () => Promise<void>;
}

/** A client of `mux` that can hold its lock, sending nothing meanwhile (the longest lease: it must not run out). */
async function holder(mux: MuxProcess): Promise<Required<Pick<Target, 'take' | 'release'>>> {
  const c = await BenchClient.connect(mux.path);
  const ask = async (command: string): Promise<void> => {
    const reply = await c.request(command);
    if (!reply.startsWith('{"return"')) throw new Error(`${command}: ${reply}`);
  };
  return {
    take: () => ask('{"execute":"__org.qmp-mux_lock","arguments":{"mode":"write","lease-ms":3600000,"reason":"bench"}}'),
    release: () => ask('{"execute":"__org.qmp-mux_unlock"}'),
  };
}

/** The processes of one load: this build, and with a baseline build given, a twin of it and the baseline. */
async function targetsOn(upstreams: readonly string[], name: string, baselineProgram: string | undefined): Promise<Partial<Record<Variant, Target>>> {
  const mux = await startMux(upstreams[0]!, name);
  const one = { mux, ...(await holder(mux)) };
  const targets: Partial<Record<Variant, Target>> = { none: one, held: one, again: one };
  if (baselineProgram === undefined) return targets;
  targets.twin = { mux: await startMux(upstreams[1]!, `${name}-twin`) };
  targets.baseline = { mux: await startMux(upstreams[2]!, `${name}-baseline`, undefined, {}, baselineProgram) };
  return targets;
}

async function stopTargets(targets: Partial<Record<Variant, Target>>): Promise<void> {
  for (const t of new Set(Object.values(targets))) await t.mux.stop();
}

/** Runs `measure` for each variant, `rounds` times, each round starting at another variant; the figures by variant, by round. */
async function rounds(targets: Partial<Record<Variant, Target>>, count: number, measure: (t: Target) => Promise<number>): Promise<Partial<Record<Variant, number[]>>> {
  const variants = Object.keys(targets) as Variant[];
  const out: Partial<Record<Variant, number[]>> = {};
  for (let r = 0; r < count; r++) {
    for (const v of [...variants.slice(r % variants.length), ...variants.slice(0, r % variants.length)]) {
      const target = targets[v]!;
      if (v === 'held') await target.take!();
      (out[v] ??= []).push(await measure(target));
      if (v === 'held') await target.release!();
    }
  }
  return out;
}

/** `figures[v]` divided by `figures[by]` in the same round, round by round. */
const per = (figures: Partial<Record<Variant, number[]>>, v: Variant, by: Variant): number[] | undefined => figures[v]?.map((x, i) => x / figures[by]![i]!);

/** How far ratios of two alike are from 1: the distance of their median plus half the spread of their middle half (at least 3%). */
function noiseOf(ratios: number[]): number {
  const sorted = sortedCopy(ratios);
  return Math.max(0.03, Math.abs(median(ratios) - 1) + (percentile(sorted, 75) - percentile(sorted, 25)) / 2);
}

/**
 * Rows for one load. On one process, a write lock held against no lock,
 * judged by the noise of two runs with no lock (`again`); across
 * processes, the build without locks against a twin of this build, judged
 * by the noise between the twin and the first process. A cost is
 * measurable when its median lies outside the noise.
 */
function report(scenario: string, measure: string, figures: Partial<Record<Variant, number[]>>, row: (r: Row) => void): Record<string, number> {
  const out: Record<string, number> = {};
  const line = (what: string, ratios: number[] | undefined, noise: number | undefined, base: Variant): void => {
    if (ratios === undefined) return;
    const ratio = median(ratios);
    const at = median(figures[base]!);
    out[what] = ratio;
    const judged = noise !== undefined;
    row({ scenario, measure: `${measure}: ${what}`, direct: round(at, 1), mux: round(ratio * at, 1), ratio: round(ratio, 3), target: judged ? `within the noise, ±${round(noise, 3)}` : '', met: judged ? Math.abs(ratio - 1) <= noise : '' });
  };
  const again = per(figures, 'again', 'none')!;
  line('no lock, again (the noise)', again, undefined, 'none');
  line('a write lock held by another client', per(figures, 'held', 'none'), noiseOf(again), 'none');
  const twin = per(figures, 'twin', 'none');
  if (twin === undefined) return out;
  line('this build in another process (the noise)', twin, undefined, 'none');
  line('the build without locks, against that process', per(figures, 'baseline', 'twin'), noiseOf(twin), 'twin');
  return out;
}

/**
 * The lock check alone, in this process: what the command router does for
 * each command of a client that holds no lock (judge the command as the
 * read-only preset would, ask the lock, count it on its way and when
 * answered, in a reply slot of its own), ns per command of CPU time.
 */
function checkAlone(held: boolean): number {
  const lock = new MonitorLock({ granted: () => undefined, ended: () => undefined, waited: () => undefined });
  const hooks = { lockChanged: () => undefined, lockReset: () => undefined, room: () => undefined };
  const holder = lock.join({ client: 1, endpoint: 'e', peer: 'p' }, hooks);
  const party = lock.join({ client: 2, endpoint: 'e', peer: 'p' }, hooks);
  if (held) lock.request(holder, { mode: 'write', waitMs: 0, leaseMs: 3_600_000, reason: undefined }, () => undefined);
  const slots: { party: LockParty; changing: boolean }[] = [];
  const n = 2_000_000;
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const changing = changesState('query-status', undefined);
    lock.active(party, 'query-status');
    if (lock.blocks(party, changing)) throw new Error('held back');
    lock.sent(party, changing);
    slots.push({ party, changing });
    const slot = slots.pop()!;
    lock.answered(slot.party, slot.changing);
  }
  const used = process.cpuUsage(start);
  if (held) lock.unlock(holder, () => undefined);
  return ((used.user + used.system) * 1000) / n;
}

export async function lockCost(row: (r: Row) => void): Promise<Record<string, unknown>> {
  const alone = { none: median(Array.from({ length: 5 }, () => checkAlone(false))), held: median(Array.from({ length: 5 }, () => checkAlone(true))) };
  const baselineProgram = process.env.QMP_MUX_BENCH_BASELINE;
  const out: Record<string, unknown> = { baseline: baselineProgram };
  const real = await targetsOn(await startQemu(3), 'lock-cost', baselineProgram);
  const processes = [...new Set(Object.values(real).map((t) => t.mux))];

  const single = new Map(await Promise.all(processes.map(async (m) => [m, await BenchClient.connect(m.path)] as const)));
  for (const c of single.values()) await sequential(c, QUERY, 200);
  const one = await rounds(real, 40, async (t) => 400 / (await sequential(single.get(t.mux)!, QUERY, 400)).seconds);
  single.forEach((c) => c.close());
  out.oneClient = { commandsPerSecond: one, ratios: report('10 (as 1) one client', 'commands/s', one, row) };

  const eight = new Map(await Promise.all(processes.map(async (m) => [m, await Promise.all(Array.from({ length: 8 }, () => BenchClient.connect(m.path)))] as const)));
  const many = await rounds(real, 16, async (t) => {
    const { done, seconds } = await drive(eight.get(t.mux)!, 400);
    return done / seconds;
  });
  eight.forEach((cs) => cs.forEach((c) => void c.close()));
  out.eightClients = { commandsPerSecond: many, ratios: report('10 (as 2) 8 clients', 'total commands/s', many, row) };
  await stopTargets(real);

  const fakes = await Promise.all([0, 1, 2].map(() => startFakeUpstream()));
  const fast = await targetsOn(fakes, 'lock-cost-fast', baselineProgram);
  const cpu = await rounds(fast, 12, async (t) => (await load(t.mux.path, t.mux.pid, 64, 600)).usPerCommand);
  out.capacity = { usPerCommand: cpu, ratios: report('10 (as 4) capacity, 64 clients', 'CPU µs per command', cpu, row) };
  await stopTargets(fast);
  const perCommandNs = median(cpu.none!) * 1000;
  for (const [what, ns] of [['no lock', alone.none], ['a write lock held by another client', alone.held]] as const) {
    row({ scenario: '10 the lock check alone', measure: `CPU ns per command (share of a command's CPU in 4), ${what}`, direct: round(perCommandNs, 0), mux: round(ns, 0), ratio: round(ns / perCommandNs, 4), target: '', met: '' });
  }
  out.checkAloneNs = alone;
  return out;
}
