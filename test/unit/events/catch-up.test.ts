import t from 'tap';
import { JsonStreamer } from '../../../src/json/streamer.ts';
import { isObject, JsonNumber, type JsonValue } from '../../../src/json/value.ts';
import { EventJournal, type JournalQuery } from '../../../src/events/journal.ts';
import { LIVE_SEQ_KEY, queryEventsReply, withLiveSeq } from '../../../src/qmp/wire.ts';

/**
 * The catch-up protocol the README gives clients, run against the journal
 * and the bytes qmp-mux would send: a client on an endpoint with live
 * sequence numbers remembers the number of the last event it handled; on
 * (re)connecting it asks `query-events` since that number, holds the live
 * events that arrive before the reply, handles the reply's events, moves
 * its cursor to the reply's `last`, then handles the held and later live
 * events numbered after the cursor.
 */
class CatchUpClient {
  cursor = 0;
  handled: number[] = [];
  /** Sequence numbers after which the journal said events were missed. */
  missedAfter: number[] = [];
  /** Live events that arrived before a reply and were not in it. */
  heldAndNew = 0;
  private held: number[] | undefined;
  private readonly streamer = new JsonStreamer((m) => this.message(m.value!));

  /** Connected and negotiated; the query is on its way. */
  connect(): void {
    this.held = [];
  }

  /** Bytes from qmp-mux, as they arrive. */
  receive(bytes: Buffer): void {
    this.streamer.feed(bytes);
  }

  get catchingUp(): boolean {
    return this.held !== undefined;
  }

  private message(value: JsonValue): void {
    const reply = isObject(value) ? value.get('return') : undefined;
    if (isObject(reply)) {
      if (reply.get('dropped') === true) this.missedAfter.push(this.cursor);
      for (const e of reply.get('events') as JsonValue[]) this.handle(num(isObject(e) ? e.get('seq') : undefined));
      this.cursor = Math.max(this.cursor, num(reply.get('last')));
      const held = this.held ?? [];
      this.held = undefined;
      for (const seq of held) if (this.handle(seq)) this.heldAndNew++;
      return;
    }
    const seq = num(isObject(value) ? value.get(LIVE_SEQ_KEY) : undefined);
    if (this.held) this.held.push(seq);
    else this.handle(seq);
  }

  private handle(seq: number): boolean {
    if (seq <= this.cursor) return false;
    this.handled.push(seq);
    this.cursor = seq;
    return true;
  }
}

function num(v: JsonValue | undefined): number {
  if (!(v instanceof JsonNumber)) throw new Error(`not a number: ${String(v)}`);
  return Number(v.text);
}

/** qmp-mux's side: numbers each event, sends it live to a connected client, answers its query (possibly late). */
class World {
  readonly journal: EventJournal;
  connected = false;
  private reply: JournalQuery | undefined;

  constructor(readonly client: CatchUpClient, maxEvents: number) {
    this.journal = new EventJournal({ maxEvents, maxBytes: 1 << 20 });
  }

  emit(): void {
    const seq = this.journal.append('STOP', Buffer.from(`{"timestamp": {"seconds": ${this.journal.last}, "microseconds": 0}, "event": "STOP"}`, 'latin1'));
    if (this.connected) this.client.receive(Buffer.concat([withLiveSeq(this.journal.since(seq - 1, () => true).events[0]!.bytes, seq), Buffer.from('\r\n')]));
  }

  connect(): void {
    this.connected = true;
    this.client.connect();
  }

  /** qmp-mux handles the query now; the reply may be written later (behind the client's earlier commands). */
  handleQuery(): void {
    this.reply = this.journal.since(this.client.cursor, () => true);
  }

  writeReply(): void {
    this.client.receive(queryEventsReply('1', this.reply!));
    this.reply = undefined;
  }

  get replyPending(): boolean {
    return this.reply !== undefined;
  }

  disconnect(): void {
    this.connected = false;
  }
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

t.test('reconnecting at the ring boundary: no gap, no duplicates, even with live events around a late reply', async (t) => {
  const client = new CatchUpClient();
  const world = new World(client, 8);
  world.connect();
  world.handleQuery();
  world.writeReply();
  for (let i = 0; i < 5; i++) world.emit();
  t.same(client.handled, range(1, 5));
  world.disconnect();
  for (let i = 0; i < 7; i++) world.emit();
  world.connect();
  world.emit();
  t.equal(world.journal.oldest, client.cursor + 1, 'at the query, the oldest event kept is exactly the first the client missed');
  world.handleQuery();
  world.emit();
  world.emit();
  world.writeReply();
  world.emit();
  t.same(client.handled, range(1, 16));
  t.same(client.missedAfter, []);

  world.disconnect();
  for (let i = 0; i < 9; i++) world.emit();
  t.equal(world.journal.oldest, client.cursor + 2, 'one event too many: the first the client missed is gone');
  world.connect();
  world.handleQuery();
  world.writeReply();
  world.emit();
  t.same(client.handled, [...range(1, 16), ...range(18, 26)]);
  t.same(client.missedAfter, [16], 'the gap is reported, not silent');
});

t.test('random interleavings: what is handled is always increasing, and complete unless a drop was reported', async (t) => {
  let seed = 20261121;
  const random = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  let gapCount = 0;
  let heldAndNew = 0;
  for (let round = 0; round < 20; round++) {
    const client = new CatchUpClient();
    const world = new World(client, 4 + round);
    for (let step = 0; step < 400; step++) {
      const r = random();
      if (r < 0.5) world.emit();
      else if (!world.connected) world.connect();
      else if (client.catchingUp && !world.replyPending) world.handleQuery();
      else if (world.replyPending) world.writeReply();
      else if (r < 0.6) world.disconnect();
    }
    if (!world.connected) world.connect();
    if (client.catchingUp && !world.replyPending) world.handleQuery();
    if (world.replyPending) world.writeReply();
    world.emit();
    const handled = client.handled;
    t.ok(handled.every((seq, i) => i === 0 || seq > handled[i - 1]!), `round ${round}: no duplicates, in order`);
    t.equal(handled.at(-1), world.journal.last, `round ${round}: up to date`);
    const gaps = handled.flatMap((seq, i) => (seq !== (i === 0 ? 1 : handled[i - 1]! + 1) ? [i === 0 ? 0 : handled[i - 1]!] : []));
    t.ok(gaps.every((after) => client.missedAfter.includes(after)), `round ${round}: every gap was reported`);
    gapCount += gaps.length;
    heldAndNew += client.heldAndNew;
  }
  t.ok(gapCount > 0 && heldAndNew > 0, `the rounds did exercise gaps (${gapCount}) and live events overtaking a late reply (${heldAndNew})`);
});

t.test('a client that polls: cursor = the last reply\'s last, with a filter', async (t) => {
  const j = new EventJournal({ maxEvents: 100, maxBytes: 1 << 20 });
  const names = ['STOP', 'RESUME', 'RTC_CHANGE'];
  const wanted = (name: string): boolean => name !== 'RTC_CHANGE';
  let cursor: number | undefined;
  const got: number[] = [];
  for (let round = 0; round < 30; round++) {
    for (let i = 0; i < round % 4; i++) {
      const name = names[j.last % 3]!;
      j.append(name, Buffer.from(`{"event": "${name}"}`, 'latin1'));
    }
    const q = j.since(cursor, wanted);
    t.equal(q.dropped, false);
    got.push(...q.events.map((e) => e.seq));
    cursor = q.last;
  }
  t.same(got, range(1, j.last).filter((seq) => wanted(names[(seq - 1) % 3]!)));
});
