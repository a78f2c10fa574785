import t, { type Test } from 'tap';
import { eventually } from '../fixtures/context.ts';
import { FakeQemu } from '../fixtures/fake-qemu.ts';
import { startMux, type MuxOptions } from '../fixtures/mux.ts';
import { TestClient } from '../fixtures/qmp-client.ts';

/**
 * Commands waiting behind a lock are input qmp-mux holds: they count in
 * their client's maxInputBytes and in totalInputBytes, so a locked-out
 * client is pushed back on, never buffered without end. (A fake QEMU that
 * answers at once: what is measured is what qmp-mux holds.)
 */

const SIZE = 1000;
/** What one turn of reading a client may take past its bound: 16 messages. */
const TURN = 16 * SIZE;

/** `{"execute":"stop","arguments":{"a":"xxx..."},"id":ID}`: SIZE bytes as qmp-mux encodes it (without the id). */
function sized(id: string): string {
  const frame = '{"execute":"stop","arguments":{"a":""}}'.length;
  return `{"execute":"stop","arguments":{"a":"${'x'.repeat(SIZE - frame)}"},"id":${JSON.stringify(id)}}`;
}

/** A qmp-mux in front of a fake QEMU, a client holding a write lock, and `clients` more, each sending `commands` stops at once. */
async function flooded(t: Test, options: MuxOptions, clients: number, commands: number) {
  const fake = await FakeQemu.start(t);
  const mux = await startMux(t, fake.path, options);
  const holder = await TestClient.connect(mux.path);
  await holder.negotiate();
  t.match(await holder.execute('__org.qmp-mux_lock', { mode: 'write' }), /^\{"return"/);
  const flooders = await Promise.all(Array.from({ length: clients }, () => TestClient.connect(mux.path)));
  t.teardown(() => [holder, ...flooders].forEach((c) => c.close()));
  for (const c of flooders) await c.negotiate();
  for (const [n, c] of flooders.entries()) for (let i = 0; i < commands; i++) c.send(sized(`${n}.${i}`));
  const held = (): number => (mux.mux.describe().lock?.waitingCommands ?? 0) * SIZE;
  /** Round trips of the holder through qmp-mux: turns in which qmp-mux would read more if it were reading. */
  const turns = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) await holder.execute('query-status');
  };
  return { holder, flooders, held, turns };
}

t.test("a client's commands waiting behind a lock count in its maxInputBytes: past it, it is not read", async (t) => {
  const maxInputBytes = 16 * 1024;
  const { holder, flooders, held, turns } = await flooded(t, { limits: { maxInputBytes } }, 1, 200);
  await eventually(() => held() >= maxInputBytes - SIZE, "the flooder's commands waiting up to its limit");
  await turns(20);
  t.ok(held() <= maxInputBytes + TURN, `${held()} bytes waiting of 200000 sent, within ${maxInputBytes} and a turn`);
  t.equal(flooders[0]!.lines.length, 2, 'none answered: they wait');
  t.equal(await holder.execute('__org.qmp-mux_unlock'), '{"return": {}}');
  await flooders[0]!.waitLines(202);
  t.equal(flooders[0]!.lines.at(-1), '{"return": {}, "id": "0.199"}', 'then all run, in order');
  t.equal(held(), 0);
});

t.test('commands waiting behind a lock count in totalInputBytes, all clients together; the holder is still read', async (t) => {
  const totalInputBytes = 64 * 1024;
  const clients = 8;
  const { holder, flooders, held, turns } = await flooded(t, { totalInputBytes, limits: { maxInputBytes: 1024 * 1024 } }, clients, 100);
  await eventually(() => held() >= totalInputBytes - clients * SIZE, 'the flooders waiting up to the total');
  await turns(20);
  t.ok(held() <= totalInputBytes + clients * TURN, `${held()} bytes waiting of ${clients * 100 * SIZE} sent`);
  t.equal(await holder.execute('__org.qmp-mux_unlock'), '{"return": {}}', 'the holder is read, so it can unlock');
  for (const [n, c] of flooders.entries()) {
    await c.waitLines(102);
    t.equal(c.lines.at(-1), `{"return": {}, "id": "${n}.99"}`, `client ${n}: all answered`);
  }
});
