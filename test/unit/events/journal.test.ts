import t from 'tap';
import { EventJournal } from '../../../src/events/journal.ts';
import { DEFAULTS } from '../../../src/config/options.ts';

const ALL = (): boolean => true;

/** A QEMU event as QEMU 7.2 writes it: compact, its own member order. */
function event(name: string, n: number): Buffer {
  return Buffer.from(`{"timestamp": {"seconds": ${1732197728 + n}, "microseconds": ${n}}, "event": "${name}"}`, 'latin1');
}

function fill(journal: EventJournal, count: number, name = 'STOP'): void {
  for (let i = 0; i < count; i++) journal.append(name, event(name, journal.last + 1));
}

const seqs = (q: { events: { seq: number }[] }): number[] => q.events.map((e) => e.seq);

t.test('numbers start at 1 and only grow; an empty journal', async (t) => {
  const j = new EventJournal({ maxEvents: 10, maxBytes: 1 << 20 });
  t.equal(j.last, 0);
  t.equal(j.oldest, 1, 'nothing kept: oldest is last + 1');
  t.same(j.since(undefined, ALL), { events: [], last: 0, dropped: false });
  t.same(j.since(0, ALL), { events: [], last: 0, dropped: false });
  t.same([j.append('STOP', event('STOP', 1)), j.append('RESUME', event('RESUME', 2)), j.append('STOP', event('STOP', 3))], [1, 2, 3]);
  t.equal(j.last, 3);
  t.equal(j.oldest, 1);
  t.equal(j.size, 3);
  const q = j.since(undefined, ALL);
  t.same(seqs(q), [1, 2, 3]);
  t.same(q.events.map((e) => e.name), ['STOP', 'RESUME', 'STOP']);
  t.equal(q.events[1]!.bytes.toString('latin1'), event('RESUME', 2).toString('latin1'), "QEMU's bytes kept as they came");
});

t.test('bounded by count: the oldest go first', async (t) => {
  const j = new EventJournal({ maxEvents: 3, maxBytes: 1 << 20 });
  fill(j, 5);
  t.equal(j.size, 3);
  t.equal(j.oldest, 3);
  t.equal(j.last, 5);
  t.same(seqs(j.since(undefined, ALL)), [3, 4, 5]);
  t.equal(j.bytes, [3, 4, 5].reduce((sum, n) => sum + event('STOP', n).length, 0), 'bytes kept are those of the events kept');
});

t.test('bounded by bytes: the oldest go first; an event larger than the ring empties it', async (t) => {
  const size = event('STOP', 1).length;
  const j = new EventJournal({ maxEvents: 100, maxBytes: 2 * size });
  fill(j, 4);
  t.same(seqs(j.since(undefined, ALL)), [3, 4]);
  t.equal(j.bytes, 2 * size);
  const big = Buffer.from(`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "BIG", "data": {"x": "${'x'.repeat(2 * size)}"}}`, 'latin1');
  t.equal(j.append('BIG', big), 5, 'numbered all the same');
  t.equal(j.size, 0);
  t.equal(j.bytes, 0);
  t.equal(j.oldest, 6);
  t.same(j.since(4, ALL), { events: [], last: 5, dropped: true }, 'the client after 4 missed 5, and is told');
  t.same(j.since(5, ALL), { events: [], last: 5, dropped: false });
  fill(j, 1);
  t.same(seqs(j.since(5, ALL)), [6]);
});

t.test('a journal that keeps nothing still numbers and reports drops', async (t) => {
  const j = new EventJournal({ maxEvents: 0, maxBytes: 1 << 20 });
  fill(j, 3);
  t.same(j.since(undefined, ALL), { events: [], last: 3, dropped: true });
  t.same(j.since(3, ALL), { events: [], last: 3, dropped: false });
});

t.test('since: its boundary with the oldest kept event', async (t) => {
  const j = new EventJournal({ maxEvents: 4, maxBytes: 1 << 20 });
  fill(j, 10);
  t.equal(j.oldest, 7);
  const cases: [since: number | undefined, events: number[], dropped: boolean][] = [
    [undefined, [7, 8, 9, 10], true],
    [0, [7, 8, 9, 10], true],
    [5, [7, 8, 9, 10], true],
    [6, [7, 8, 9, 10], false],
    [7, [8, 9, 10], false],
    [9, [10], false],
    [10, [], false],
    [11, [], true],
    [1e6, [], true],
  ];
  for (const [since, events, dropped] of cases) {
    const q = j.since(since, ALL);
    t.same(seqs(q), events, `since ${since}: events`);
    t.equal(q.dropped, dropped, `since ${since}: dropped`);
    t.equal(q.last, 10);
  }
  t.same(seqs(new EventJournal({ maxEvents: 4, maxBytes: 1 << 20 }).since(undefined, ALL)), [], 'nothing dropped from the start: undefined is 0');
});

t.test('the filter: only accepted names, dropped unaffected by the filter', async (t) => {
  const j = new EventJournal({ maxEvents: 5, maxBytes: 1 << 20 });
  const names = ['STOP', 'RESUME', 'RTC_CHANGE', 'RTC_CHANGE', 'BLOCK_JOB_READY', 'STOP', 'RTC_CHANGE'];
  for (const name of names) j.append(name, event(name, j.last + 1));
  const seen: string[] = [];
  const q = j.since(1, (name) => {
    seen.push(name);
    return name !== 'RTC_CHANGE';
  });
  t.same(q.events.map((e) => [e.seq, e.name]), [[5, 'BLOCK_JOB_READY'], [6, 'STOP']]);
  t.same(seen, names.slice(2), 'asked once per kept event after since');
  t.equal(q.dropped, true, 'event 2 is gone; the filter cannot know it would have hidden it');
  t.same(seqs(j.since(2, (name) => name === 'STOP')), [6]);
});

t.test('many events: memory is reclaimed as the ring turns', async (t) => {
  const j = new EventJournal({ maxEvents: 100, maxBytes: 1 << 20 });
  for (let i = 0; i < 5000; i++) j.append('X', Buffer.from(`{"event": "X", "n": ${i}}`, 'latin1'));
  t.equal(j.size, 100);
  t.same(seqs(j.since(4950, ALL)), Array.from({ length: 50 }, (_, i) => 4951 + i));
  t.equal(j.oldest, 4901);
  t.same(
    j.since(4950, ALL).events.slice(0, 2).map((e) => e.bytes.toString('latin1')),
    ['{"event": "X", "n": 4950}', '{"event": "X", "n": 4951}'],
    'seq N holds the N-th event after the ring has been compacted',
  );
});

t.test('defaults', async (t) => {
  t.same(DEFAULTS.journal, { maxEvents: 10_000, maxBytes: 4 * 1024 * 1024 });
  const j = new EventJournal(DEFAULTS.journal);
  fill(j, 10_001);
  t.equal(j.size, 10_000);
  t.equal(j.oldest, 2);
});
