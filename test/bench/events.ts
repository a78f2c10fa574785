import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { BenchClient } from './client.ts';
import type { Row } from './main.ts';
import { startMux, workdir } from './processes.ts';
import { percentile, round, sortedCopy } from './stats.ts';

/**
 * Event fan-out: a fake QEMU in this process emits events at a fixed rate,
 * stamped with this process's clock; qmp-mux (its own process) fans them out
 * to N clients here, which count them and time them.
 */

const GREETING = '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "bench"}, "capabilities": ["oob"]}}\r\n';

const now = (): number => performance.now() * 1000;

/** Counts events and samples latency: per read, the oldest complete event's age (an upper bound). */
class Receiver {
  events = 0;
  readonly latencies: number[] = [];
  private carry = false;

  constructor(socket: Socket) {
    socket.removeAllListeners('data');
    socket.setEncoding('latin1' as BufferEncoding);
    socket.on('data', (d: string) => this.onData(d));
  }

  private onData(d: string): void {
    const arrived = now();
    let first = 0;
    if (this.carry) first = d.indexOf('\n') + 1;
    const at = d.indexOf('"t": ', first);
    if (at >= 0) {
      const end = d.indexOf('}', at);
      if (end > 0) this.latencies.push(arrived - Number(d.slice(at + 5, end)));
    }
    for (let i = d.indexOf('\n'); i >= 0; i = d.indexOf('\n', i + 1)) this.events++;
    this.carry = !d.endsWith('\n');
  }
}

export async function eventFanOut(): Promise<{ rows: Row[]; figures: unknown }> {
  const rows: Row[] = [];
  const figures: Record<string, unknown> = {};
  for (const [clients, rate] of [[10, 10000], [100, 10000], [1000, 1000]] as const) {
    const path = join(workdir(), `events-${clients}.sock`);
    let upstream: Socket | undefined;
    const server = createServer((s) => {
      upstream = s;
      s.setEncoding('latin1');
      s.write(GREETING);
      s.on('data', (d: string) => {
        const id = /"id":("[^"]*"|\d+)/.exec(d)?.[1];
        if (id) s.write(`{"return": {}, "id": ${id}}\r\n`);
      });
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => server.listen(path, r));
    const mux = await startMux(path, `events${clients}`);
    const conns: BenchClient[] = [];
    while (conns.length < clients) {
      conns.push(...(await Promise.all(Array.from({ length: Math.min(250, clients - conns.length) }, () => BenchClient.connect(mux.path)))));
    }
    const receivers = conns.map((c) => new Receiver(c.socket));
    const seconds = 3;
    const total = rate * seconds;
    let seq = 0;
    const start = now();
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const due = Math.min(total, Math.floor(((now() - start) / 1e6) * rate));
        let batch = '';
        while (seq < due) {
          const t = now();
          batch += `{"timestamp": {"seconds": ${Math.floor(t / 1e6)}, "microseconds": ${Math.floor(t % 1e6)}}, "event": "BENCH", "data": {"seq": ${seq++}, "t": ${t.toFixed(1)}}}\r\n`;
        }
        if (batch) upstream!.write(batch);
        if (seq >= total) {
          clearInterval(timer);
          resolve();
        }
      }, 1);
    });
    const emitted = now() - start;
    const deadline = Date.now() + 10000;
    while (receivers.some((r) => r.events < total) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const received = receivers.reduce((n, r) => n + r.events, 0);
    const lost = clients * total - received;
    const latencies = sortedCopy(receivers.flatMap((r) => r.latencies));
    const p99ms = percentile(latencies, 99) / 1000;
    const perSecond = received / (emitted / 1e6);
    figures[`${clients}x${rate}`] = { clients, rate, seconds, emitted: total, received, lost, deliveredPerSecond: perSecond, latencyMs: { p50: percentile(latencies, 50) / 1000, p99: p99ms, max: latencies[latencies.length - 1]! / 1000 } };
    const targeted = (clients === 100 && rate === 10000) || (clients === 1000 && rate === 1000);
    rows.push({
      scenario: `5 events, ${clients} clients @ ${rate}/s`,
      measure: 'delivered/s | lost | p99 ms',
      direct: '',
      mux: `${round(perSecond, 0)} | ${lost} | ${round(p99ms, 1)}`,
      ratio: '',
      target: targeted ? 'no loss, p99 < 50 ms' : 'no loss',
      met: lost === 0 && (!targeted || p99ms < 50),
    });
    conns.forEach((c) => c.close());
    await mux.stop();
    server.close();
  }
  return { rows, figures };
}
