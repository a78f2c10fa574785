import { createConnection, type Socket } from 'node:net';

/**
 * A lean QMP client for measuring: one outstanding request at a time, or a
 * fixed number in flight; replies matched by order (no ids), events skipped.
 */
export class BenchClient {
  private buffer = '';
  private waiters: ((line: string) => void)[] = [];
  /** Lines that arrived with nobody waiting (events, mostly). */
  unsolicited = 0;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => this.onData(d));
    socket.on('error', () => undefined);
  }

  static async connect(path: string, negotiate: 'plain' | 'oob' | 'none' = 'plain'): Promise<BenchClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = createConnection(path);
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
    return BenchClient.over(socket, negotiate);
  }

  /** A client on a socket already connected (a TLS one, say): greeted, then negotiated. */
  static async over(socket: Socket, negotiate: 'plain' | 'oob' | 'none' = 'plain'): Promise<BenchClient> {
    const client = new BenchClient(socket);
    await client.next();
    if (negotiate !== 'none') {
      const reply = await client.request(negotiate === 'oob' ? '{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}' : '{"execute":"qmp_capabilities"}');
      if (!reply.startsWith('{"return"')) throw new Error(`negotiation failed: ${reply}`);
    }
    return client;
  }

  /** Sends one command and resolves with the next reply line. */
  request(text: string): Promise<string> {
    const p = this.next();
    this.socket.write(text);
    return p;
  }

  /** The next reply line (not an event). */
  next(): Promise<string> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Closes the connection; resolves once it is gone, so the monitor is free for the next client. */
  close(): Promise<void> {
    this.socket.destroy();
    return new Promise((resolve) => (this.socket.closed ? resolve() : this.socket.once('close', () => resolve())));
  }

  private onData(d: string): void {
    this.buffer += d;
    let i: number;
    while ((i = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, i - 1);
      this.buffer = this.buffer.slice(i + 1);
      if (line.startsWith('{"timestamp"')) {
        this.unsolicited++;
        continue;
      }
      const w = this.waiters.shift();
      if (w) w(line);
      else this.unsolicited++;
    }
  }
}

/** Runs `count` requests one at a time; returns per-request latencies (µs) and the elapsed time (s). */
export async function sequential(client: BenchClient, command: string, count: number): Promise<{ latencies: Float64Array; seconds: number }> {
  const latencies = new Float64Array(count);
  const start = process.hrtime.bigint();
  let last = start;
  for (let i = 0; i < count; i++) {
    await client.request(command);
    const now = process.hrtime.bigint();
    latencies[i] = Number(now - last) / 1000;
    last = now;
  }
  return { latencies, seconds: Number(last - start) / 1e9 };
}

/** Keeps `depth` requests in flight on one client until `count` are answered; returns elapsed seconds. */
export async function pipelined(client: BenchClient, command: string, count: number, depth: number): Promise<number> {
  const start = process.hrtime.bigint();
  let sent = 0;
  let done = 0;
  await new Promise<void>((resolve) => {
    const sendOne = (): void => {
      sent++;
      void client.request(command).then(() => {
        done++;
        if (done === count) resolve();
        else if (sent < count) sendOne();
      });
    };
    for (let i = 0; i < Math.min(depth, count); i++) sendOne();
  });
  return Number(process.hrtime.bigint() - start) / 1e9;
}
