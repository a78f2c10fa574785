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
 * loads run through that build too, in the same rounds: what having the
 * check at all costs.
 */
import { changesState, type LockParty } from '../../src/mux/lock-model.ts';
import { MonitorLock } from '../../src/mux/monitor-lock.ts';
import type { Row } from './main.ts';
import { BenchClient, sequential } from './client.ts';
import { drive, load, QUERY } from './load.ts';
import { startFakeUpstream, startMux, startQemu, type MuxProcess } from './processes.ts';
import { median, percentile, round, sortedCopy } from './stats.ts';

type Variant = 'none' | 'again' | 'held' | 'baseline';

interface Target {
  mux: MuxProcess;
  /** Takes and releases a write lock as another client; none for the baseline build. */
  take?: () => Promise<void>;
  release?: () => Promise<void>;
}

/** A client of `mux` that can hold its lock, sending nothing meanwhile (the longest lease: it must not run out). */
async function holder(mux: MuxProcess): Promise<Pick<Target, 'take' | 'release'>> {
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

/** Runs `measure` for each variant, `rounds` times, each round starting at another variant; the figures by variant, by round. */
async function rounds(targets: Record<'none' | 'baseline', Target | undefined>, count: number, measure: (t: Target) => Promise<number>): Promise<Partial<Record<Variant, number[]>>> {
  const variants: Variant[] = ['none', 'held', 'again', ...(targets.baseline ? (['baseline'] as const) : [])];
  const out: Partial<Record<Variant, number[]>> = {};
  for (let r = 0; r < count; r++) {
    for (const v of [...variants.slice(r % variants.length), ...variants.slice(0, r % variants.length)]) {
      const target = v === 'baseline' ? targets.baseline! : targets.none!;
      if (v === 'held') await target.take!();
      (out[v] ??= []).push(await measure(target));
      if (v === 'held') await target.release!();
    }
  }
  return out;
}

/** Each variant's figure divided by `none`'s in the same round, round by round. */
function perRound(figures: Partial<Record<Variant, number[]>>): Partial<Record<Variant, number[]>> {
  const none = figures.none!;
  const out: Partial<Record<Variant, number[]>> = {};
  for (const [v, xs] of Object.entries(figures) as [Variant, number[]][]) if (v !== 'none') out[v] = xs.map((x, i) => x / none[i]!);
  return out;
}

/**
 * Rows for one load: the median of each variant's ratios to `none`. The
 * noise is how far two identical runs (`again`) are apart: the distance of
 * their median ratio from 1 plus half the spread of the middle half of
 * their ratios (at least 3%). A cost is measurable when a variant's median
 * lies outside it.
 */
function report(scenario: string, measure: string, figures: Partial<Record<Variant, number[]>>, row: (r: Row) => void): Record<string, number> {
  const r = perRound(figures);
  const again = sortedCopy(r.again!);
  const noise = Math.max(0.03, Math.abs(median(r.again!) - 1) + (percentile(again, 75) - percentile(again, 25)) / 2);
  const base = median(figures.none!);
  const line = (what: string, ratios: number[] | undefined, judged: boolean): void => {
    if (ratios === undefined) return;
    const ratio = median(ratios);
    const target = judged ? `within the noise, ±${round(noise, 3)}` : '';
    row({ scenario, measure: `${measure}: ${what}`, direct: round(base, 1), mux: round(ratio * base, 1), ratio: round(ratio, 3), target, met: judged ? Math.abs(ratio - 1) <= noise : '' });
  };
  line('no lock, again (the noise)', r.again, false);
  line('a write lock held by another client', r.held, true);
  line('the build without locks', r.baseline, true);
  return { noise, ...Object.fromEntries(Object.entries(r).map(([v, xs]) => [v, median(xs)])) };
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
  const [forMux, forBaseline] = (await startQemu(2)) as [string, string];
  const mux = await startMux(forMux, 'lock-cost');
  const baseline = baselineProgram ? await startMux(forBaseline, 'lock-cost-baseline', undefined, {}, baselineProgram) : undefined;
  const targets = { none: { mux, ...(await holder(mux)) }, baseline: baseline && { mux: baseline } };
  const out: Record<string, unknown> = { baseline: baselineProgram };

  const single = new Map<MuxProcess, BenchClient>();
  for (const t of [mux, baseline]) if (t) single.set(t, await BenchClient.connect(t.path));
  for (const c of single.values()) await sequential(c, QUERY, 200);
  const one = await rounds(targets, 40, async (t) => {
    const { seconds } = await sequential(single.get(t.mux)!, QUERY, 400);
    return 400 / seconds;
  });
  single.forEach((c) => c.close());
  out.oneClient = { commandsPerSecond: one, ratios: report('10 (as 1) one client', 'commands/s', one, row) };

  const eight = new Map<MuxProcess, BenchClient[]>();
  for (const t of [mux, baseline]) if (t) eight.set(t, await Promise.all(Array.from({ length: 8 }, () => BenchClient.connect(t.path))));
  const many = await rounds(targets, 16, async (t) => {
    const { done, seconds } = await drive(eight.get(t.mux)!, 400);
    return done / seconds;
  });
  eight.forEach((cs) => cs.forEach((c) => void c.close()));
  out.eightClients = { commandsPerSecond: many, ratios: report('10 (as 2) 8 clients', 'total commands/s', many, row) };
  await mux.stop();
  await baseline?.stop();

  const fast = await startMux(await startFakeUpstream(), 'lock-cost-fast');
  const fastBaseline = baselineProgram ? await startMux(await startFakeUpstream(), 'lock-cost-fast-baseline', undefined, {}, baselineProgram) : undefined;
  const cpu = await rounds({ none: { mux: fast, ...(await holder(fast)) }, baseline: fastBaseline && { mux: fastBaseline } }, 12, async (t) => (await load(t.mux.path, t.mux.pid, 64, 600)).usPerCommand);
  out.capacity = { usPerCommand: cpu, ratios: report('10 (as 4) capacity, 64 clients', 'CPU µs per command', cpu, row) };
  const perCommandNs = median(cpu.none!) * 1000;
  for (const [what, ns] of [['no lock', alone.none], ['a write lock held by another client', alone.held]] as const) {
    row({ scenario: '10 the lock check alone', measure: `CPU ns per command (share of a command's CPU in 4), ${what}`, direct: round(perCommandNs, 0), mux: round(ns, 0), ratio: round(ns / perCommandNs, 4), target: '', met: '' });
  }
  out.checkAloneNs = alone;
  await fast.stop();
  await fastBaseline?.stop();
  return out;
}
