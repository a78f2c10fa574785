import { writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { HEAP_PROBE, liveHeap, runCli, type Running } from '../fixtures/cli.ts';
import { eventually } from '../fixtures/context.ts';
import { descriptorsOf, rssOf } from '../fixtures/proc.ts';
import { needQemu, startQemu, type Qemu } from '../fixtures/qemu.ts';
import { TestClient } from '../fixtures/qmp-client.ts';
import { socketDir } from '../fixtures/tmp.ts';

/**
 * qmp-mux under churn and abuse, against a real QEMU, as its own process:
 * afterwards its file descriptors and clients are back where they started,
 * and its memory stays within a stated bound and stops growing.
 */

/** RSS growth allowed over the whole soak: V8 keeps a heap it has grown, but a leak of 2,000 connections would pass it. */
const RSS_BOUND = 64 * 1024 * 1024;

interface Setup {
  run: Running;
  pid: number;
  qemu: Qemu;
  dir: string;
  /** Endpoints: `main` (unix), `tcp`, `tiny` (one client at most). */
  main: string;
  tcp: { type: 'tcp'; host: string; port: number };
  tiny: string;
  /** A client that stays throughout, to ask qmp-mux how it is. */
  control: TestClient;
  /** The one client of `tiny`, so that others are refused there. */
  holder: TestClient;
}

async function setup(t: Parameters<typeof socketDir>[0], node: string[] = []): Promise<Setup> {
  const dir = socketDir(t);
  const qemu = await startQemu(t, { dir, names: ['vm.qmp'] });
  const config = join(dir, 'mux.json');
  writeFileSync(
    config,
    JSON.stringify({
      upstream: { connect: `unix:${qemu.monitors[0]}` },
      endpoints: [
        { name: 'main', listen: `unix:${dir}/main.sock`, maxClients: 1000 },
        { name: 'tcp', listen: 'tcp:127.0.0.1:0', maxClients: 1000 },
        { name: 'tiny', listen: `unix:${dir}/tiny.sock`, maxClients: 1 },
      ],
      backoff: { initialMs: 10, maxMs: 50 },
      timeouts: { closeMs: 200, clientGreetingMs: 0 },
    }),
  );
  const run = runCli(t, ['--config', config], { node });
  const port = Number((await run.waitFor(/clients connect at tcp:127\.0\.0\.1:(\d+)/))[1]);
  const control = await TestClient.connect(`${dir}/main.sock`);
  await control.negotiate();
  const holder = await TestClient.connect(`${dir}/tiny.sock`);
  await holder.negotiate();
  return { run, pid: run.child.pid!, qemu, dir, main: `${dir}/main.sock`, tcp: { type: 'tcp', host: '127.0.0.1', port }, tiny: `${dir}/tiny.sock`, control, holder };
}

async function clientsNow(s: Setup): Promise<number> {
  return (JSON.parse(await s.control.execute('__org.qmp-mux_query-proxy')) as { return: { clients: number } }).return.clients;
}

/** Runs `one` `count` times, `parallel` at a time. */
async function batches(count: number, parallel: number, one: (i: number) => Promise<void>): Promise<void> {
  for (let i = 0; i < count; i += parallel) await Promise.all(Array.from({ length: Math.min(parallel, count - i) }, (_, j) => one(i + j)));
}

function raw(to: string | { port: number; host: string }): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = typeof to === 'string' ? createConnection(to) : createConnection(to.port, to.host);
    s.on('error', () => undefined);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

t.test('churn: thousands of connections of every kind leave nothing behind', async (t) => {
  if (!needQemu(t)) return;
  const s = await setup(t);
  const clients0 = await clientsNow(s);
  const fds0 = descriptorsOf(s.pid);
  const rss0 = rssOf(s.pid);
  let connections = 0;
  const count = (n: number) => (connections += n);

  // Refused at the limit: read the error, close.
  await batches(300, 50, async () => {
    const c = await TestClient.connect(s.tiny);
    await c.rest();
  });
  count(300);
  // Never negotiating: read the greeting, close.
  await batches(300, 50, async () => {
    const c = await TestClient.connect(s.main);
    await c.next();
    c.close();
  });
  count(300);
  // Half-closing after their commands: every reply, then EOF.
  await batches(300, 50, async (i) => {
    const c = await TestClient.connect(s.main);
    c.send(`{"execute":"qmp_capabilities"}{"execute":"query-status"}{"execute":"query-name","id":${i}}`);
    c.endInput();
    const rest = await c.rest();
    if (rest.length !== 4) throw new Error(`half-closed client ${i} got ${JSON.stringify(rest)}`);
  });
  count(300);
  // Resetting mid-message (TCP RST).
  await batches(300, 50, async () => {
    const c = await raw(s.tcp);
    c.write('{"execute":"qmp_capabilities"}{"execute":"query-st');
    c.resetAndDestroy();
  });
  count(300);
  // Closing with replies in flight.
  await batches(300, 50, async () => {
    const c = await TestClient.connect(s.main);
    await c.negotiate();
    c.send('{"execute":"query-status"}'.repeat(20));
    c.close();
  });
  count(300);
  // Closing while QEMU is away: some half a message in, some with nothing sent.
  await s.qemu.stop();
  await batches(300, 50, async (i) => {
    const c = await raw(s.main);
    if (i % 2 === 0) c.write('{"execute":"qmp_capa');
    c.destroy();
  });
  count(300);
  const qemu = await startQemu(t, { dir: s.dir, names: ['vm.qmp'] });
  t.teardown(() => qemu.stop());
  await s.run.waitFor(/QEMU connected/);
  // Every client saw QEMU go (EOF): new ones.
  s.control = await TestClient.connect(s.main);
  await s.control.negotiate();
  s.holder = await TestClient.connect(s.tiny);
  await s.holder.negotiate();

  t.ok(connections >= 1800, `${connections} connections made`);
  await eventually(async () => (await clientsNow(s)) === clients0, 'query-proxy to count the clients it started with', { intervalMs: 200 });
  t.equal(await clientsNow(s), clients0, `back to ${clients0} clients`);
  await eventually(() => descriptorsOf(s.pid) <= fds0, () => `file descriptors back to ${fds0} (now ${descriptorsOf(s.pid)})`, { intervalMs: 100 });
  t.ok(descriptorsOf(s.pid) <= fds0, `file descriptors back to ${fds0}`);
  const grown = rssOf(s.pid) - rss0;
  t.ok(grown < RSS_BOUND, `RSS grew ${Math.round(grown / 2 ** 20)} MiB, within ${RSS_BOUND / 2 ** 20} MiB`);
  t.equal(s.run.child.exitCode, null, 'qmp-mux still running');
});

t.test('memory after abuse: rounds of garbage and floods; nothing kept from round to round', async (t) => {
  if (!needQemu(t)) return;
  const s = await setup(t, HEAP_PROBE);
  const clients0 = await clientsNow(s);
  const rss0 = rssOf(s.pid);
  const heaps: number[] = [];
  let seed = 7;
  const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let round = 0; round < 8; round++) {
    // Garbage: random bytes, 200 KB per client.
    await batches(20, 20, async () => {
      const c = await TestClient.connect(s.main);
      await c.next();
      const junk = Buffer.alloc(200 * 1024);
      for (let i = 0; i < junk.length; i++) junk[i] = Math.floor(random() * 256);
      c.send(junk);
      c.close();
    });
    // Floods: thousands of commands, then gone before the replies.
    await batches(20, 20, async () => {
      const c = await TestClient.connect(s.main);
      await c.negotiate();
      c.send('{"execute":"query-status","id":1}'.repeat(5000));
      c.close();
    });
    await eventually(async () => (await clientsNow(s)) === clients0, 'the round\'s clients to be gone', { intervalMs: 200 });
    heaps.push(await liveHeap(s.run));
  }
  const mib = (n: number): string => (n / 2 ** 20).toFixed(1);
  const first = Math.min(...heaps.slice(1, 4));
  const last = Math.max(...heaps.slice(4));
  // Measured flat: 0.2 MiB over eight rounds; twenty sessions kept per round come to 0.4 MiB a round.
  t.ok(last - first < 0.75 * 2 ** 20, `live heap after each round (MiB): ${heaps.map(mib).join(', ')}: nothing kept from round to round`);
  const grown = rssOf(s.pid) - rss0;
  t.ok(grown < RSS_BOUND, `RSS grew ${mib(grown)} MiB, within ${RSS_BOUND / 2 ** 20} MiB`);
});
