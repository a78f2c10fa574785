import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import t, { type Test } from 'tap';
import { OpsServer } from '../../src/ops/http-server.ts';

/**
 * The HTTP listener with its default bounds, against clients that hold
 * connections: a probe always gets through. Real sockets on loopback.
 */

async function start(t: Test): Promise<number> {
  const big = `${'qmpmux_x_total 1\n'.repeat(100_000)}`;
  const server = new OpsServer({ metrics: () => big, notReady: () => undefined, status: () => '{}' }, { address: { type: 'tcp', host: '127.0.0.1', port: 0 } });
  t.teardown(() => server.stop());
  return (await server.start()).port;
}

/** What `curl http://127.0.0.1:PORT/healthz` does: one request on a new connection. */
function probe(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/healthz', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(`${res.statusCode} ${body}`));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Connections held open by a misbehaving client; each is opened again when the server closes it. */
class Holders {
  readonly sockets = new Set<Socket>();
  closedByServer = 0;
  private stopped = false;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly port: number,
    /** What each connection does once open. */
    private readonly behave: (socket: Socket, every: (ms: number, f: () => void) => void) => void,
    private readonly localAddress = '127.0.0.1',
  ) {}

  open(count: number): Promise<void> {
    return Promise.all(Array.from({ length: count }, () => this.one())).then(() => undefined);
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    for (const s of this.sockets) s.destroy();
  }

  private one(): Promise<void> {
    return new Promise((resolve) => {
      const socket = connect({ host: '127.0.0.1', port: this.port, localAddress: this.localAddress });
      this.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.once('connect', () => {
        this.behave(socket, (ms, f) => {
          const timer = setInterval(() => (socket.destroyed ? clearInterval(timer) : f()), ms);
          this.timers.add(timer);
        });
        resolve();
      });
      socket.once('close', () => {
        this.sockets.delete(socket);
        if (this.stopped) return;
        this.closedByServer++;
        // A misbehaving client comes straight back.
        setTimeout(() => void this.one(), 20);
      });
    });
  }
}

t.test('an answer closes its connection, whatever the client asked', async (t) => {
  const port = await start(t);
  for (const header of ['', 'Connection: keep-alive\r\n']) {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (text += d));
    const closed = new Promise((r) => socket.on('close', r));
    // Two requests in a row, as a client reusing the connection every few seconds would send them.
    socket.write(`GET /healthz HTTP/1.1\r\nHost: x\r\n${header}\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n`);
    await closed;
    t.match(text, /^HTTP\/1\.1 200 OK\r\n/, header || 'no header');
    t.match(text, /\r\nConnection: close\r\n/);
    t.equal(text.match(/HTTP\/1\.1/g)?.length, 1, 'one answer, then the server closed the connection');
  }
});

t.test('idle, slow, and unread connections from the probe\'s own address never keep a probe out', async (t) => {
  const port = await start(t);
  const idle = new Holders(port, () => undefined);
  // A header line a byte at a time, never finished.
  const slow = new Holders(port, (s, every) => {
    s.write('GET /healthz HTTP/1.1\r\nX: ');
    every(200, () => s.write('a'));
  });
  // The metrics, never read.
  const unread = new Holders(port, (s) => {
    s.pause();
    s.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
  });
  t.teardown(() => [idle, slow, unread].forEach((h) => h.stop()));
  await idle.open(16);
  await slow.open(16);
  await unread.open(16);
  for (let i = 0; i < 8; i++) t.equal(await probe(port), '200 ok\n', `probe ${i + 1}`);
  t.ok(idle.closedByServer + slow.closedByServer + unread.closedByServer > 0, 'holders were closed to make room');
});

t.test('a flood of connections from another address never keeps a probe out', async (t) => {
  const port = await start(t);
  const flood = new Holders(port, () => undefined, '127.0.0.2');
  t.teardown(() => flood.stop());
  await flood.open(32);
  let opening = true;
  const burst = async (): Promise<void> => {
    while (opening) await flood.open(24);
  };
  const flooding = burst();
  for (let i = 0; i < 8; i++) t.equal(await probe(port), '200 ok\n', `probe ${i + 1}`);
  opening = false;
  await flooding;
  t.ok(flood.closedByServer > 24, `the flood's own connections made room (${flood.closedByServer} closed)`);
});
