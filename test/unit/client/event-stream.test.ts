import t from 'tap';
import { EventStream } from '../../../src/client/event-stream.ts';
import { ConnectionError } from '../../../src/errors.ts';

t.test('items pushed before and while waiting arrive in order; end after them', async (t) => {
  let detached = 0;
  const s = new EventStream<number>(10, () => detached++);
  s.push(1);
  s.push(2);
  const got: number[] = [];
  const reading = (async () => {
    for await (const n of s) got.push(n);
  })();
  await new Promise((r) => setImmediate(r));
  s.push(3);
  s.end();
  s.push(4);
  await reading;
  t.same(got, [1, 2, 3], 'nothing after the end');
  t.equal(detached, 1, 'detached once');
  s.end();
  t.equal(detached, 1, 'ending again does nothing');
});

t.test('an error ends the stream after the queued items', async (t) => {
  const s = new EventStream<string>(10, () => undefined);
  s.push('a');
  s.end(new ConnectionError('lost'));
  t.same(await s.next(), { value: 'a', done: false });
  await t.rejects(s.next(), { message: 'lost' });
  t.same(await s.next(), { value: undefined, done: true }, 'then it is done');
  const waiting = new EventStream<string>(10, () => undefined);
  const next = waiting.next();
  waiting.end(new ConnectionError('lost while waiting'));
  await t.rejects(next, { message: 'lost while waiting' });
});

t.test('a reader too far behind gets EventOverflowError, after what was queued', async (t) => {
  const s = new EventStream<number>(2, () => undefined);
  s.push(1);
  s.push(2);
  s.push(3);
  t.same(await s.next(), { value: 1, done: false });
  t.same(await s.next(), { value: 2, done: false });
  await t.rejects(s.next(), { name: 'EventOverflowError', code: 'QMPMUX_EVENT_OVERFLOW', message: 'more than 2 events waiting to be read' });
});

t.test('leaving a for-await loop detaches and drops the queue', async (t) => {
  let detached = false;
  const s = new EventStream<number>(10, () => (detached = true));
  s.push(1);
  s.push(2);
  for await (const n of s) {
    t.equal(n, 1);
    break;
  }
  t.ok(detached);
  t.same(await s.next(), { value: undefined, done: true });
});
