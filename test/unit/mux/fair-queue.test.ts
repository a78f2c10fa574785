import t from 'tap';
import { FairQueue } from '../../../src/mux/fair-queue.ts';

const item = (name: string) => ({ name });

t.test('the member served least recently goes first; never-served ones first of all, in arrival order', async (t) => {
  const q = new FairQueue<{ name: string }>();
  const [a, b, c] = [item('a'), item('b'), item('c')];
  q.add(a);
  q.add(b);
  t.equal(q.take(), a);
  q.add(a); // served just now: behind b
  q.add(c); // never served: ahead of a, behind b (which came first)
  t.same([q.take(), q.take(), q.take()], [b, c, a]);
  t.equal(q.take(), undefined);
  t.equal(q.size, 0);
});

t.test('adding a member that already waits changes nothing', async (t) => {
  const q = new FairQueue<{ name: string }>();
  const a = item('a');
  q.add(a);
  q.add(a);
  t.equal(q.size, 1);
  t.equal(q.take(), a);
  t.equal(q.take(), undefined);
});

t.test('a busy member re-added after each turn alternates with the others (round robin)', async (t) => {
  const q = new FairQueue<{ name: string }>();
  const members = ['a', 'b', 'c'].map(item);
  for (const m of members) q.add(m);
  const order: string[] = [];
  for (let i = 0; i < 9; i++) {
    const m = q.take()!;
    order.push(m.name);
    q.add(m);
  }
  t.same(order.join(''), 'abcabcabc');
});

t.test('agrees with a plain model under random use', async (t) => {
  let seed = 1;
  const random = (n: number): number => (seed = (seed * 48271) % 2147483647) % n;
  const q = new FairQueue<{ name: string }>();
  const members = Array.from({ length: 20 }, (_, i) => item(`m${i}`));
  // The model: waiting members with the time they were last served (-Infinity + arrival if never).
  const lastServed = new Map<object, number>();
  const waiting = new Map<object, number>();
  let clock = 0;
  let disagreements = 0;
  for (let step = 0; step < 5000; step++) {
    if (random(3) > 0) {
      const m = members[random(members.length)]!;
      q.add(m);
      if (!waiting.has(m)) waiting.set(m, lastServed.get(m) ?? -1e15 + clock++);
    } else {
      const got = q.take();
      let want: object | undefined;
      for (const [m, key] of waiting) if (want === undefined || key < waiting.get(want)!) want = m;
      if (got !== want) disagreements++;
      if (want) {
        waiting.delete(want);
        lastServed.set(want, clock++);
      }
    }
  }
  t.equal(disagreements, 0, '5,000 random adds and takes');
});
