import t from 'tap';
import { StallWatch } from '../../../src/mux/stall-watch.ts';

function watch(thresholdMs: number) {
  const said: string[] = [];
  const w = new StallWatch(thresholdMs, { stalled: (ms) => said.push(`stalled ${ms}`), recovered: (ms) => said.push(`recovered ${ms}`) });
  return { w, said };
}

t.test('a stall is said once when the oldest command passes the threshold, and once when it ends', async (t) => {
  const { w, said } = watch(1000);
  w.check(undefined, 0);
  w.check(100, 1000);
  t.same(said, [], 'nothing in flight, then a command 900 ms old: no stall');
  t.notOk(w.isStalled(100, 1100), 'exactly the threshold is not past it');
  w.check(100, 1101);
  t.same(said, ['stalled 1001']);
  w.check(100, 5000);
  w.check(100, 9000);
  t.same(said, ['stalled 1001'], 'said once however long it lasts');
  t.ok(w.isStalled(100, 9000));
  w.check(8500, 9100);
  t.same(said, ['stalled 1001', 'recovered 9000'], 'over once the oldest command is young again: it lasted from when the stalled one was sent');
  w.check(undefined, 9200);
  t.same(said.length, 2, 'nothing more to say');
});

t.test('a stall also ends when nothing is in flight any more (the connection went)', async (t) => {
  const { w, said } = watch(10);
  w.check(0, 50);
  w.check(undefined, 60);
  t.same(said, ['stalled 50', 'recovered 60']);
  w.check(100, 200);
  t.same(said, ['stalled 50', 'recovered 60', 'stalled 100'], 'and a new one is said again');
});
