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

/** Commands/s and CPU µs per command of the server process `pid` with `k` clients one command at a time each, for `ms`. */
export async function load(path: string, pid: number, k: number, ms = 2500): Promise<{ commandsPerSecond: number; usPerCommand: number }> {
  const clients = await Promise.all(Array.from({ length: k }, () => BenchClient.connect(path)));
  for (const c of clients) await sequential(c, QUERY, 50);
  const cpu0 = cpuSeconds(pid);
  const { done, seconds: elapsed } = await drive(clients, ms);
  const cpu = cpuSeconds(pid) - cpu0;
  clients.forEach((c) => c.close());
  return { commandsPerSecond: done / elapsed, usPerCommand: (cpu * 1e6) / done };
}
