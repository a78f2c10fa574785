import { BenchClient, sequential } from './client.ts';
import { cpuSeconds } from './processes.ts';

/** The command every load sends: small, and answered by QEMU at once. */
export const QUERY = '{"execute":"query-status"}';

/** Every client sends `query-status` one at a time until `ms` have passed; commands answered, and seconds taken. */
export async function drive(clients: BenchClient[], ms: number): Promise<{ done: number; seconds: number }> {
  let done = 0;
  const start = process.hrtime.bigint();
  const deadline = Date.now() + ms;
  await Promise.all(
    clients.map(async (c) => {
      while (Date.now() < deadline) {
        await c.request(QUERY);
        done++;
      }
    }),
  );
  return { done, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

/** What a load measures of a server: commands answered a second, and its CPU time per command. */
export interface Measured {
  commandsPerSecond: number;
  usPerCommand: number;
}

/** Commands/s and CPU µs per command of the server process `pid` with `k` clients one command at a time each, for `ms`. */
export async function load(path: string, pid: number, k: number, ms = 2500): Promise<Measured> {
  const [measured] = (await loadInTurns([{ path, pid }], k, 1, ms)) as [Measured];
  return measured;
}

/** A server a load is measured on: where it listens, and its process. */
export interface Server {
  path: string;
  pid: number;
}

/**
 * `load` on several servers taking turns: `rounds` rounds of `ms` each, the
 * order turning by one every round, so that the machine's speed drifting
 * meanwhile (it does, by a third, on a shared VM) falls on all of them
 * alike and their ratios stay fair. Totals per server, in their order.
 */
export async function loadInTurns(servers: readonly Server[], k: number, rounds = 6, ms = 400): Promise<Measured[]> {
  const clients = await Promise.all(servers.map((s) => Promise.all(Array.from({ length: k }, () => BenchClient.connect(s.path)))));
  for (const each of clients) for (const c of each) await sequential(c, QUERY, 50);
  const totals = servers.map(() => ({ cpu: 0, done: 0, seconds: 0 }));
  for (let r = 0; r < rounds; r++) {
    for (let j = 0; j < servers.length; j++) {
      const i = (j + r) % servers.length;
      const cpu0 = cpuSeconds(servers[i]!.pid);
      const { done, seconds } = await drive(clients[i]!, ms);
      const total = totals[i]!;
      total.cpu += cpuSeconds(servers[i]!.pid) - cpu0;
      total.done += done;
      total.seconds += seconds;
    }
  }
  clients.forEach((each) => each.forEach((c) => c.close()));
  return totals.map((t) => ({ commandsPerSecond: t.done / t.seconds, usPerCommand: (t.cpu * 1e6) / t.done }));
}
