import t from 'tap';
import { Backoff } from '../../../src/upstream/backoff.ts';

t.test('capped exponential backoff with jitter between half and all of the ceiling', async (t) => {
  const low = new Backoff({ initialMs: 50, maxMs: 5000 }, () => 0);
  t.same(Array.from({ length: 9 }, () => low.next()), [25, 50, 100, 200, 400, 800, 1600, 2500, 2500], 'half the ceiling at the lowest');
  const high = new Backoff({ initialMs: 50, maxMs: 5000 }, () => 0.999999);
  t.same(Array.from({ length: 9 }, () => high.next()), [50, 100, 200, 400, 800, 1600, 3200, 5000, 5000], 'all of it at the highest, never past maxMs');
  high.reset();
  t.equal(high.next(), 50, 'reset starts over');
  const long = new Backoff({ initialMs: 1, maxMs: 10 }, () => 0.5);
  for (let i = 0; i < 100; i++) long.next();
  t.equal(long.next(), 8, 'many attempts later still within bounds');
});
