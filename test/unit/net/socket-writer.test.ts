import type { Socket } from 'node:net';
import t from 'tap';
import { SocketFlusher, SocketWriter } from '../../../src/net/socket-writer.ts';

/** A stand-in socket recording each write as one string. */
function socket(): Socket & { writes: string[] } {
  const writes: string[] = [];
  return { writes, destroyed: false, write: (data: Buffer | string) => writes.push(data.toString()) > 0 } as unknown as Socket & { writes: string[] };
}

const tick = (): Promise<void> => new Promise((r) => process.nextTick(r));

t.test('everything written in one tick goes out in one write', async (t) => {
  const flusher = new SocketFlusher();
  const s = socket();
  const w = new SocketWriter(s, flusher);
  w.write('a');
  w.write(Buffer.from('é'));
  w.write('c');
  t.equal(w.waiting, 1 + 2 + 1, 'bytes waiting');
  t.same(s.writes, [], 'nothing yet');
  await tick();
  t.same(s.writes, ['aéc'], 'one write, strings as latin1, buffers as they are');
  t.equal(w.waiting, 0);
  w.write('d');
  await tick();
  t.same(s.writes, ['aéc', 'd'], 'a single message is written as it is');
});

t.test('one flush per tick for all writers, including one made dirty during it', async (t) => {
  const flusher = new SocketFlusher();
  const [s1, s2] = [socket(), socket()];
  const w2 = new SocketWriter(s2, flusher);
  const w1 = new SocketWriter({ ...s1, write: (d: Buffer | string) => (s1.writes.push(d.toString()), w2.write('from-w1-flush'), true) } as unknown as Socket, flusher);
  w1.write('x');
  await tick();
  t.same(s1.writes, ['x']);
  t.same(s2.writes, ['from-w1-flush'], 'flushed in the same pass');
});

t.test('a destroyed socket is not written to', async (t) => {
  const flusher = new SocketFlusher();
  const s = socket();
  const w = new SocketWriter(s, flusher);
  w.write('lost');
  (s as { destroyed: boolean }).destroyed = true;
  w.flush();
  t.same(s.writes, []);
  t.equal(w.waiting, 0);
});
