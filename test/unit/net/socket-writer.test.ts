import type { Socket } from 'node:net';
import t from 'tap';
import { SocketFlusher, SocketWriter } from '../../../src/net/socket-writer.ts';

/** A stand-in socket recording each write as one string (what a cork gathered, as one), and how many pieces each was. */
function socket(): Socket & { writes: string[]; pieces: number[] } {
  const writes: string[] = [];
  const pieces: number[] = [];
  let corked: string[] | undefined;
  const write = (data: Buffer | string): boolean => {
    if (corked) corked.push(data.toString());
    else writes.push(data.toString()) && pieces.push(1);
    return true;
  };
  const cork = (): void => void (corked = []);
  const uncork = (): void => {
    writes.push(corked!.join(''));
    pieces.push(corked!.length);
    corked = undefined;
  };
  return { writes, pieces, destroyed: false, write, cork, uncork } as unknown as Socket & { writes: string[]; pieces: number[] };
}

/** The end of this turn of the event loop, when writers flush. */
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

t.test('everything written in one turn of the event loop goes out in one write, after the input of that turn', async (t) => {
  const flusher = new SocketFlusher();
  const s = socket();
  const w = new SocketWriter(s, flusher);
  w.write('a');
  w.write(Buffer.from('é'));
  w.write('c');
  t.equal(w.waiting, 1 + 2 + 1, 'bytes waiting');
  t.same(s.writes, [], 'nothing yet');
  await new Promise((r) => process.nextTick(r));
  t.same(s.writes, [], 'nor at the next tick: other input of this turn may still come');
  await turn();
  t.same(s.writes, ['aéc'], 'one write, strings as latin1, buffers as they are');
  t.equal(w.waiting, 0);
  w.write('d');
  await turn();
  t.same(s.writes, ['aéc', 'd'], 'a single message is written as it is');
});

t.test('one flush per turn for all writers, including one made dirty during it', async (t) => {
  const flusher = new SocketFlusher();
  const [s1, s2] = [socket(), socket()];
  const w2 = new SocketWriter(s2, flusher);
  const w1 = new SocketWriter({ ...s1, write: (d: Buffer | string) => (s1.writes.push(d.toString()), w2.write('from-w1-flush'), true) } as unknown as Socket, flusher);
  w1.write('x');
  await turn();
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

t.test('a writer holding 64 KiB writes at once, without waiting for the end of the turn', async (t) => {
  const flusher = new SocketFlusher();
  const s = socket();
  const w = new SocketWriter(s, flusher);
  w.write(Buffer.alloc(40 * 1024, 'a'));
  t.same(s.writes.length, 0);
  w.write(Buffer.alloc(30 * 1024, 'b'));
  t.same(s.writes.map((x) => x.length), [70 * 1024], 'past 64 KiB: written');
  t.equal(w.waiting, 0);
  w.write('c');
  await turn();
  t.same(s.writes.map((x) => x.length), [70 * 1024, 1], 'and the writer goes on as before');
});

t.test('output of 16 KiB and more goes out as the pieces it was given, in one write; less is joined first', async (t) => {
  const flusher = new SocketFlusher();
  const s = socket();
  const w = new SocketWriter(s, flusher);
  const big = [Buffer.alloc(10 * 1024, 'a'), Buffer.alloc(10 * 1024, 'b'), Buffer.from('\r\n')];
  w.write('{');
  w.write(big);
  await turn();
  t.same(s.writes, ['{' + 'a'.repeat(10 * 1024) + 'b'.repeat(10 * 1024) + '\r\n'], 'in order, as one write');
  t.same(s.pieces, [4], 'of the pieces as given: nothing joined');
  w.write([Buffer.from('x'), Buffer.from('y')]);
  w.write('z');
  await turn();
  t.same(s.writes.at(-1), 'xyz');
  t.same(s.pieces.at(-1), 1, 'a few bytes: joined into one buffer');
});
