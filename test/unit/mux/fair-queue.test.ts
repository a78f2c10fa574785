import t from 'tap';
import { FairQueue, Fairness } from '../../../src/mux/fair-queue.ts';

const item = (name: string) => ({ name, fairness: new Fairness() });
type Item = ReturnType<typeof item>;

/** Takes `n` turns, each member charged `cost(member)` and put back to wait. */
function turns(q: FairQueue<Item>, n: number, cost: (m: Item) => number): string {
  let order = '';
  for (let i = 0; i < n; i++) {
    const m = q.take(cost(q.peek()!))!;
    order += m.name;
    q.add(m);
  }
  return order;
}

t.test('members charged the same take turns in arrival order (round robin)', async (t) => {
  const q = new FairQueue<Item>();
  for (const m of ['a', 'b', 'c'].map(item)) q.add(m);
  t.equal(turns(q, 9, () => 10), 'abcabcabc');
});

t.test('turns are shared by cost: a member sending 4 times the bytes gets a quarter of the turns', async (t) => {
  const q = new FairQueue<Item>();
  const big = item('B');
  const small = item('s');
  q.add(big);
  q.add(small);
  const order = turns(q, 50, (m) => (m === big ? 400 : 100));
  t.equal(order.split('B').length - 1, 10, 'B: 10 turns of 400 bytes');
  t.equal(order.split('s').length - 1, 40, 's: 40 turns of 100 bytes');
  t.notMatch(order, /sssss/, 'never more than its cost-worth in a row');
});

t.test('a member that starts waiting goes ahead of one just charged for a large turn, and is owed nothing for its idle time', async (t) => {
  const q = new FairQueue<Item>();
  const [hog, quiet] = [item('h'), item('q')];
  q.add(hog);
  t.equal(turns(q, 5, () => 1000), 'hhhhh', 'alone, the hog takes every turn');
  q.add(quiet);
  t.equal(q.peek(), quiet, 'the newcomer is next: the hog was charged for the turn it just had');
  t.equal(turns(q, 4, () => 1000), 'qhqh', 'then they alternate: the quiet one was idle, it is not owed the 5 turns it did not take');
});

t.test('a member asking something now and then waits for at most one turn of each member with a long queue', async (t) => {
  const q = new FairQueue<Item>();
  const hogs = Array.from({ length: 16 }, (_, i) => item(String.fromCharCode(65 + i)));
  for (const h of hogs) q.add(h);
  const quiet = item('q');
  t.equal(turns(q, 17, () => 65536), 'ABCDEFGHIJKLMNOPA', 'each long queue has had its first turn, and A its second');
  q.add(quiet);
  t.equal(q.peek(), quiet, 'idle, owing nothing: it goes first among the 15 at the same turn');
  q.take(30);
  for (let i = 0; i < 20; i++) {
    turns(q, i % 7, () => 65536);
    q.add(quiet);
    let ahead = 0;
    while (q.peek() !== quiet) {
      q.add(q.take(65536)!);
      ahead++;
    }
    if (ahead > hogs.length) t.fail(`query ${i + 2}: ${ahead} turns of others ahead of it`);
    q.take(30);
  }
  t.pass('20 more queries, each after at most one turn of each of the 16');
});

t.test('a member that leaves owing cannot come back first', async (t) => {
  const q = new FairQueue<Item>();
  const [hog, sly] = [item('h'), item('s')];
  q.add(hog);
  t.equal(turns(q, 1, () => 100), 'h');
  q.add(sly);
  t.equal(q.take(1000), sly, 'idle: served at once, for 1000');
  q.add(sly);
  t.equal(turns(q, 10, (m) => (m === hog ? 100 : 1000)), 'hhhhhhhhhs', 'back at once, it waits until the others have had as much');
});

t.test('adding a member that already waits changes nothing; remove forgets one', async (t) => {
  const q = new FairQueue<Item>();
  const [a, b, c] = ['a', 'b', 'c'].map(item) as [Item, Item, Item];
  q.add(a);
  q.add(a);
  t.equal(q.size, 1);
  q.add(b);
  q.add(c);
  q.remove(b);
  q.remove(b);
  t.equal(q.size, 2);
  t.same([q.take(1), q.take(1), q.take(1)], [a, c, undefined]);
  q.add(b);
  t.equal(q.take(1), b, 'a removed member can come back');
});

t.test('agrees with a plain model under random use', async (t) => {
  let seed = 1;
  const random = (n: number): number => (seed = (seed * 48271) % 2147483647) % n;
  const q = new FairQueue<Item>();
  const members = Array.from({ length: 20 }, (_, i) => item(`m${i}`));
  // The model, by its definition: a waiting member's key is the later of the
  // current turn and where its last turn ended; the least key goes; at the
  // same key, one that owes nothing first, then in order of arrival.
  const finish = new Map<Item, number>();
  const waiting = new Map<Item, { key: number; owed: boolean; order: number }>();
  let now = 0;
  let arrivals = 0;
  let disagreements = 0;
  for (let step = 0; step < 5000; step++) {
    const what = random(6);
    if (what < 3) {
      const m = members[random(members.length)]!;
      q.add(m);
      if (!waiting.has(m)) waiting.set(m, { key: Math.max(now, finish.get(m) ?? 0), owed: (finish.get(m) ?? 0) > now, order: arrivals++ });
    } else if (what < 5) {
      const cost = 1 + random(5000);
      const got = q.take(cost);
      let want: Item | undefined;
      for (const [m, w] of waiting) {
        const best = want && waiting.get(want)!;
        const before = !best || w.key < best.key || (w.key === best.key && (w.owed !== best.owed ? !w.owed : w.order < best.order));
        if (before) want = m;
      }
      if (got !== want) disagreements++;
      if (want) {
        now = waiting.get(want)!.key;
        finish.set(want, now + cost);
        waiting.delete(want);
      }
    } else {
      const m = members[random(members.length)]!;
      q.remove(m);
      waiting.delete(m);
    }
  }
  t.equal(disagreements, 0, '5,000 random adds, takes and removes');
  t.equal(q.size, waiting.size);
});
