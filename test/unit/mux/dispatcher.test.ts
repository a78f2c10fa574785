import t from 'tap';
import { JsonNumber, type JsonObject } from '../../../src/json/value.ts';
import { Dispatcher, type DispatcherOptions } from '../../../src/mux/dispatcher.ts';
import type { Lane } from '../../../src/mux/lane.ts';
import type { UpstreamCommand } from '../../../src/mux/upstream-command.ts';
import type { ReplySlot } from '../../../src/qmp/monitor-session.ts';
import { frameOne } from '../../../src/qmp/upstream-framer.ts';
import { SpannedMessage } from '../../../src/qmp/upstream-message.ts';
import { CommandEncoder, encodeCommand, wireBuffer, type WireData } from '../../../src/qmp/wire.ts';

/** A dispatcher wired to a recording upstream. */
function setup(window = 3, options: Partial<DispatcherOptions> = {}) {
  const sent: string[] = [];
  const answered: string[] = [];
  const d = new Dispatcher({
    window,
    windowBytes: 1 << 20,
    totalInputBytes: 1 << 30,
    encoder: new CommandEncoder(),
    answered: (command) => answered.push(command.name),
    ...options,
  });
  d.attach((bytes) => sent.push(bytes.toString('utf8')));
  /** QEMU's reply (compact, as QEMU writes it); the dispatcher's verdict. */
  const answer = (text: string): string | undefined => d.reply(frameOne(Buffer.from(text))!);
  /** A lane whose owner counts what it hears. */
  const newLane = (): Lane & { heard: { room: number; lost: number } } => {
    const heard = { room: 0, lost: 0 };
    return Object.assign(d.lane({ room: () => void heard.room++, repliesLost: () => void heard.lost++ }), { heard });
  };
  return { sent, d, answer, answered, newLane };
}

function command(name: string, idText?: string, options: { oob?: boolean; args?: JsonObject } = {}): UpstreamCommand {
  const bytes = encodeCommand(name, options.args, options.oob ?? false);
  if (!Buffer.isBuffer(bytes)) throw new Error(bytes.tooLarge);
  return { name, bytes, oob: options.oob ?? false, idText };
}

/** A reply slot recording what it gets. */
function slot(): ReplySlot & { got: string[] } {
  const got: string[] = [];
  const s = {
    got,
    fill: (r: WireData) => void got.push(wireBuffer(r).toString().replace(/\r\n$/, '')),
  };
  return s;
}

t.test('in-band commands go without an id; the client\'s id goes back where QEMU puts it', async (t) => {
  const { sent, d, answer, newLane } = setup();
  const [one, two, three] = [slot(), slot(), slot()];
  d.enqueue(newLane(), command('query-status', '"a"'), one);
  d.enqueue(newLane(), command('stop', '{"x": [1]}'), two);
  d.enqueue(newLane(), command('cont'), three);
  t.same(sent, ['{"execute":"query-status"}', '{"execute":"stop"}', '{"execute":"cont"}']);
  t.equal(answer('{"return": {"status": "running"}}'), undefined);
  t.equal(answer('{"error": {"class": "GenericError", "desc": "no"}}'), undefined);
  t.equal(answer('{"return": {}}'), undefined);
  t.same(one.got, ['{"return": {"status": "running"}, "id": "a"}'], 'id last in a return');
  t.same(two.got, ['{"id": {"x": [1]}, "error": {"class": "GenericError", "desc": "no"}}'], 'id first in an error');
  t.same(three.got, ['{"return": {}}'], 'no id when the client sent none');
});

t.test('window bounds what is in flight; the rest goes as replies come', async (t) => {
  const { sent, d, answer, newLane } = setup(2);
  const lanes = [newLane(), newLane()];
  const slots = [slot(), slot(), slot(), slot()];
  for (const [i, s] of slots.entries()) d.enqueue(lanes[i % 2]!, command('x', String(i)), s);
  t.equal(sent.length, 2);
  t.equal(d.stats.inBandInFlight, 2);
  answer('{"return": 1}');
  t.equal(sent.length, 3, 'the third went once there was room');
  answer('{"return": 2}');
  t.equal(sent.length, 4, 'and the fourth');
  answer('{"return": 3}');
  answer('{"return": 4}');
  t.same(slots.map((s) => s.got), [['{"return": 1, "id": 0}'], ['{"return": 2, "id": 1}'], ['{"return": 3, "id": 2}'], ['{"return": 4, "id": 3}']]);
  t.same(d.stats, { inBandInFlight: 0, inFlight: 0, inFlightBytes: 0, queuedBytes: 0, sent: 4 });
});

t.test('round robin: a long queue delays another client by at most the window', async (t) => {
  const window = 3;
  const { sent, d, answer, newLane } = setup(window);
  const busy = newLane();
  const quiet = newLane();
  for (let i = 0; i < 2000; i++) d.enqueue(busy, command('busy'), slot());
  const q = slot();
  d.enqueue(quiet, command('quiet', '"q"'), q);
  let answered = 0;
  while (q.got.length === 0 && answered < 2000) {
    answer(`{"return": ${answered}}`);
    answered++;
  }
  t.ok(answered <= window + 1, `quiet client answered after ${answered} replies`);
  t.same(q.got, [`{"return": ${answered - 1}, "id": "q"}`]);
  t.ok(sent.includes('{"execute":"quiet"}'));
});

t.test('one in-band command of a client in flight at a time: a client pipelining cheap commands holds at most one ahead of another\'s', async (t) => {
  const { sent, d, answer, newLane } = setup(7);
  const busy = newLane();
  const quiet = newLane();
  const busySlots = Array.from({ length: 10 }, () => slot());
  for (const s of busySlots) d.enqueue(busy, command('query-qmp-schema'), s);
  t.equal(sent.length, 1, 'one of the busy client\'s commands in flight, though the window has room for more');
  const q = slot();
  d.enqueue(quiet, command('query-name', '"q"'), q);
  t.equal(sent.length, 2, 'the quiet client\'s command goes at once, behind that one only');
  answer('{"return": 0}');
  answer('{"return": 1}');
  t.same(q.got, ['{"return": 1, "id": "q"}']);
  for (let i = 1; i < 10; i++) answer(`{"return": ${i + 1}}`);
  t.same(busySlots.map((s) => s.got.length), Array(10).fill(1), 'the busy client loses nothing');
  t.same(d.stats, { inBandInFlight: 0, inFlight: 0, inFlightBytes: 0, queuedBytes: 0, sent: 11 });
});

t.test('a client\'s commands lost with the connection free its place: its queued ones go on the next', async (t) => {
  const { sent, d, answer, newLane } = setup(7);
  const lane = newLane();
  for (let i = 0; i < 3; i++) d.enqueue(lane, command('x', String(i)), slot());
  t.equal(sent.length, 1);
  d.detach();
  t.equal(lane.heard.lost, 1);
  d.attach((bytes) => sent.push(bytes.toString('utf8')));
  t.equal(sent.length, 2, 'the next of its commands went on the new connection');
  answer('{"return": {}}');
  t.equal(sent.length, 3, 'and the last once that was answered');
});

t.test('a closed lane drops what it queued; a reply for a command already sent is still consumed in order', async (t) => {
  const { sent, d, answer, newLane } = setup(1);
  const leaving = newLane();
  const staying = newLane();
  const gone = slot();
  d.enqueue(leaving, command('first'), gone);
  d.enqueue(leaving, command('dropped'), slot());
  const mine = slot();
  d.enqueue(staying, command('mine', '7'), mine);
  d.close(leaving);
  d.enqueue(leaving, command('after-close'), slot());
  t.equal(answer('{"return": "for first"}'), undefined);
  t.same(gone.got, ['{"return": "for first"}'], 'the slot decides what to do with it (a closed session drops it)');
  t.equal(answer('{"return": "for mine"}'), undefined);
  t.same(mine.got, ['{"return": "for mine", "id": 7}']);
  t.same(sent, ['{"execute":"first"}', '{"execute":"mine"}'], 'neither the dropped nor the late command was sent');
});

t.test('replies that cannot answer anything in flight are reported, never delivered', async (t) => {
  const { d, answer, newLane } = setup(5);
  const s = slot();
  t.equal(answer('{"return": {}}'), 'a reply when none was owed');
  d.enqueue(newLane(), command('x', '1'), s);
  t.equal(answer('{"return": {}, "id": 3}'), 'a reply with an id qmp-mux did not give');
  t.equal(answer('{"return": {}, "id": "qmp-mux:1:abc"}'), 'a reply with an id qmp-mux did not give');
  for (const desc of ['JSON parse error, expecting value', 'JSON token size limit exceeded', 'JSON token count limit exceeded', 'JSON nesting depth limit exceeded', "QMP input member 'x' is unexpected"]) {
    t.equal(answer(`{"error": {"class": "GenericError", "desc": "${desc}"}}`), 'an error QEMU reports only for input it could not read', desc);
  }
  t.same(s.got, [], 'none of it went to the command in flight');
  t.equal(answer('{"error": {"class": "GenericError", "desc": "JSON is fine"}}'), undefined, 'an ordinary error answers it');
  t.same(s.got, ['{"id": 1, "error": {"class": "GenericError", "desc": "JSON is fine"}}']);
});

t.test('exec-oob bypasses the window, with a small id of qmp-mux\'s own', async (t) => {
  const { sent, d, answer, newLane } = setup(1);
  const lane = newLane();
  d.enqueue(lane, command('a', '1'), slot());
  d.enqueue(lane, command('b', '2'), slot());
  const oob = slot();
  d.enqueue(lane, command('yank', '"y"', { oob: true }), oob);
  t.same(sent, ['{"execute":"a"}', '{"exec-oob":"yank","id":0}'], 'one in-band (window 1) and the out-of-band one');
  t.equal(answer('{"id": 0, "error": {"class": "GenericError", "desc": "no"}}'), undefined, 'it may overtake');
  t.same(oob.got, ['{"id": "y", "error": {"class": "GenericError", "desc": "no"}}']);
  const quiet = slot();
  d.enqueue(lane, command('yank', undefined, { oob: true }), quiet);
  t.equal(sent[2], '{"exec-oob":"yank","id":0}', 'its id is free again');
  answer('{"return": {}, "id": 0}');
  t.same(quiet.got, ['{"return": {}}'], 'our id removed when the client sent none');
  t.equal(answer('{"return": {}, "id": 0}'), 'a reply with an id qmp-mux did not give', 'an id answered once is not in flight any more');
});

t.test('out-of-band commands in flight together have ids of their own; replies in any order reach theirs', async (t) => {
  const { sent, d, answer, newLane } = setup(3);
  const [a, b] = [slot(), slot()];
  d.enqueue(newLane(), command('yank', '"a"', { oob: true }), a);
  d.enqueue(newLane(), command('yank', '"b"', { oob: true }), b);
  t.same(sent, ['{"exec-oob":"yank","id":0}', '{"exec-oob":"yank","id":1}']);
  t.equal(answer('{"return": "second", "id": 1}'), undefined);
  t.equal(answer('{"return": "first", "id": 0}'), undefined);
  t.same(a.got, ['{"return": "first", "id": "a"}']);
  t.same(b.got, ['{"return": "second", "id": "b"}']);
});

t.test('QEMU away: out-of-band commands wait and go first; the owners of commands in flight hear they are lost', async (t) => {
  const { sent, d, newLane } = setup(3);
  const owners = [newLane(), newLane(), newLane()];
  d.enqueue(owners[0]!, command('a'), slot());
  d.enqueue(owners[1]!, command('yank', undefined, { oob: true }), slot());
  d.detach();
  t.same(owners.map((l) => l.heard.lost), [1, 1, 0], 'every client with a command in flight, and no other');
  const queued = slot();
  d.enqueue(newLane(), command('later'), queued);
  d.enqueue(newLane(), command('query-yank', undefined, { oob: true }), slot());
  t.equal(sent.length, 2, 'nothing sent while QEMU is away');
  const again: string[] = [];
  d.attach((bytes) => again.push(bytes.toString()));
  t.same(again, ['{"exec-oob":"query-yank","id":0}', '{"execute":"later"}']);
});

t.test('idle resolves once nothing is queued or in flight', async (t) => {
  const { d, answer, newLane } = setup(1);
  await d.idle();
  const lane = newLane();
  d.enqueue(lane, command('a'), slot());
  d.enqueue(lane, command('b'), slot());
  let idle = false;
  const waiting = d.idle().then(() => (idle = true));
  answer('{"return": {}}');
  await Promise.resolve();
  t.equal(idle, false, 'b is still to go');
  answer('{"return": {}}');
  await waiting;
  t.equal(idle, true);
});

t.test('qmp-mux\'s own calls go in order with the rest', async (t) => {
  const { sent, d, answer, newLane } = setup(2);
  d.enqueue(newLane(), command('a'), slot());
  const reply = d.call('quit');
  t.same(sent, ['{"execute":"a"}', '{"execute":"quit"}']);
  answer('{"return": "a"}');
  answer('{"return": {}}');
  t.equal((await reply)?.toString(), '{"return": {}}\r\n');
  d.detach();
  t.equal(await d.call('quit'), undefined, 'QEMU away: no reply');
});

t.test('arguments are encoded digit for digit', async (t) => {
  const { sent, d, newLane } = setup();
  const args: JsonObject = new Map([['max-bandwidth', new JsonNumber('18446744073709551615', true)]]);
  d.enqueue(newLane(), command('migrate-set-parameters', undefined, { args }), slot());
  t.same(sent, ['{"execute":"migrate-set-parameters","arguments":{"max-bandwidth":18446744073709551615}}']);
});

/** A command of exactly `size` bytes as encoded. */
function sized(name: string, size: number, idText?: string): UpstreamCommand {
  const frame = `{"execute":"${name}","arguments":{"a":""}}`.length;
  return command(name, idText, { args: new Map([['a', 'x'.repeat(size - frame)]]) });
}

t.test('the window counts bytes: commands go while they fit, and one larger than the window goes alone', async (t) => {
  const { sent, d, answer, newLane } = setup(7, { windowBytes: 100 });
  const lane = newLane();
  d.enqueue(lane, sized('a', 40), slot());
  d.enqueue(newLane(), sized('b', 60), slot());
  d.enqueue(newLane(), sized('c', 40), slot());
  t.equal(sent.length, 2, '40 + 60 fill the window; 40 more would not fit');
  t.equal(d.stats.inFlightBytes, 100);
  answer('{"return": {}}');
  t.equal(sent.length, 3, 'room for c once a is answered');
  answer('{"return": {}}');
  answer('{"return": {}}');
  d.enqueue(lane, sized('huge', 500), slot());
  d.enqueue(lane, sized('d', 40), slot());
  t.equal(sent.length, 4, 'the huge one goes, alone: nothing was in flight');
  t.equal(d.stats.inFlightBytes, 500);
  answer('{"return": {}}');
  t.equal(sent.length, 5, 'then the next');
});

t.test('turns by bytes: beside a client queueing large commands, another waits for at most the one in flight', async (t) => {
  const { sent, d, answer, newLane } = setup(7, { windowBytes: 2048 });
  const hog = newLane();
  const quiet = newLane();
  for (let i = 0; i < 100; i++) d.enqueue(hog, sized('hog', 2048), slot());
  t.equal(sent.length, 1, 'one of the hog\'s commands fills the window');
  const mine = slot();
  d.enqueue(quiet, command('query-status', '"q"'), mine);
  answer('{"return": {}}');
  t.equal(sent.at(-1), '{"execute":"query-status"}', 'the quiet client\'s command is next, ahead of the hog\'s 99');
  t.equal(sent.length, 2);
  answer('{"return": {"status": "running"}}');
  t.same(mine.got, ['{"return": {"status": "running"}, "id": "q"}']);
  for (let i = 0; i < 3; i++) {
    d.enqueue(quiet, command('query-status'), slot());
    answer('{"return": {}}');
    t.equal(sent.at(-1), '{"execute":"query-status"}', `and again (${i + 1}): ${sent.length - 2} hog commands sent so far`);
  }
});

t.test('queued bytes are counted per lane and in all; a lane found full hears when commands go', async (t) => {
  const { d, answer, newLane } = setup(1, { totalInputBytes: 150 });
  const a = newLane();
  const b = newLane();
  d.enqueue(a, sized('a1', 50), slot());
  d.enqueue(a, sized('a2', 50), slot());
  d.enqueue(a, sized('a3', 50), slot());
  d.enqueue(b, sized('b1', 60), slot());
  t.equal(a.queuedBytes, 100, 'a1 went; a2 and a3 wait');
  t.equal(b.queuedBytes, 60);
  t.equal(d.stats.queuedBytes, 160);
  t.ok(d.full(a, 1 << 20, 0), 'a holds as much as it may while all together hold 160 of 150');
  t.ok(d.full(b, 1 << 20, 0), 'and so does b');
  t.notOk(d.full(newLane(), 10, 1000), 'a client with nothing queued is never full, whatever it holds of a message');
  answer('{"return": {}}');
  t.same([a.heard.room, b.heard.room], [1, 1], 'b1 went (b\'s turn): 100 of 150 now, so both hear');
  t.notOk(d.full(a, 1 << 20, 0));
  t.ok(d.full(a, 120, 20), 'by its own limit: 100 queued and 20 of a message held, of 120');
  d.enqueue(b, sized('b2', 60), slot());
  t.ok(d.full(b, 1 << 20, 0), 'all hold 160 again');
  answer('{"return": {}}');
  t.same([a.heard.room, b.heard.room], [2, 2], 'a2 went (a\'s turn by bytes): a hears, its own queue shrank; b hears, all hold 110 of 150');
  t.ok(d.full(a, 10, 0));
  d.close(a);
  t.equal(a.queuedBytes, 0, 'a closed lane holds nothing');
  t.equal(d.stats.queuedBytes, b.queuedBytes, 'what is left is b\'s');
  t.equal(a.heard.room, 2, 'and is told nothing more');
});

t.test('exec-oob has bounds of its own: one in flight per client, eight in all', async (t) => {
  const { sent, d, answer, newLane } = setup(1);
  const greedy = newLane();
  for (let i = 0; i < 3; i++) d.enqueue(greedy, command('yank', String(i), { oob: true }), slot());
  t.equal(sent.length, 1, 'one of the greedy client\'s out-of-band commands at a time');
  const others = Array.from({ length: 9 }, () => newLane());
  for (const lane of others) d.enqueue(lane, command('query-yank', undefined, { oob: true }), slot());
  t.equal(d.stats.inFlight, 8, 'eight in flight in all');
  const size = (name: string): number => command(name, undefined, { oob: true }).bytes.length;
  t.equal(d.stats.queuedBytes, 2 * size('yank') + 2 * size('query-yank'), 'two of the greedy client\'s wait, and two others\'');
  answer('{"return": {}, "id": 0}');
  t.equal(d.stats.inFlight, 8, 'an answer makes room for one more');
  t.match(sent.at(-1), /"exec-oob":"query-yank"/, 'another client\'s, which waited longer than the greedy one\'s second');
  for (let id = 1; id < 8; id++) answer(`{"return": {}, "id": ${id}}`);
  t.match(sent.slice(9), [/"exec-oob":"query-yank"/, /"exec-oob":"yank"/], 'the last other client\'s, then the greedy client\'s second, alone');
});

t.test('oldestSentAt: when the oldest command QEMU has not answered went', async (t) => {
  const { d, answer, newLane } = setup(3);
  t.equal(d.oldestSentAt, undefined);
  const before = performance.now();
  d.enqueue(newLane(), command('a'), slot());
  const first = d.oldestSentAt!;
  t.ok(first >= before);
  d.enqueue(newLane(), command('yank', undefined, { oob: true }), slot());
  t.equal(d.oldestSentAt, first, 'the older of in-band and out-of-band');
  answer('{"return": {}}');
  t.ok(d.oldestSentAt! >= first, 'then the out-of-band one');
  answer('{"return": {}, "id": 0}');
  t.equal(d.oldestSentAt, undefined);
});

t.test('a reply too long to keep becomes an error for its client alone; matching goes on', async (t) => {
  const { d, newLane } = setup(3);
  const lane = newLane();
  const [big, next, oob] = [slot(), slot(), slot()];
  d.enqueue(lane, command('query-big', '"b"'), big);
  d.enqueue(lane, command('query-small', '"s"'), next);
  d.enqueue(lane, command('yank', '"y"', { oob: true }), oob);
  const tooLarge = (id: number | undefined) => ({ bytes: Buffer.from('{"return": "xxx'), kind: 'return' as const, id: undefined, event: undefined, tooLarge: { length: 70000, limit: 65536, id } });
  t.equal(d.reply(tooLarge(0)), undefined, 'an out-of-band one, by its id');
  t.equal(d.reply(tooLarge(undefined)), undefined, 'an in-band one, in order');
  t.equal(d.reply(frameOne(Buffer.from('{"return": {}}'))!), undefined);
  t.same(oob.got, ['{"id": "y", "error": {"class": "GenericError", "desc": "QEMU\'s reply to yank is larger than qmp-mux passes on (70000 bytes; maxUpstreamMessage is 65536)"}}']);
  t.same(big.got, ['{"id": "b", "error": {"class": "GenericError", "desc": "QEMU\'s reply to query-big is larger than qmp-mux passes on (70000 bytes; maxUpstreamMessage is 65536)"}}']);
  t.same(next.got, ['{"return": {}, "id": "s"}']);
  t.equal(d.reply(tooLarge(-1)), 'a reply with an id qmp-mux did not give');
});

/** A reply as it came over several reads, counting how often it is joined into one buffer. */
class CountedSpanned extends SpannedMessage {
  joins = 0;
  override get bytes(): Buffer {
    this.joins++;
    return super.bytes;
  }
}

t.test('a large reply in pieces is routed without being joined; an error in pieces is still told from a reader error', async (t) => {
  const { d, newLane } = setup(3);
  const lane = newLane();
  const [big, error, readerError] = [slot(), slot(), slot()];
  d.enqueue(lane, command('query-qmp-schema', '"s"'), big);
  d.enqueue(lane, command('x', '"e"'), error);
  d.enqueue(lane, command('y', '"r"'), readerError);
  const body = 'a'.repeat(70000);
  const reply = new CountedSpanned([Buffer.from(`{"return": ["${body.slice(0, 30000)}`), Buffer.from(`${body.slice(30000)}"]}`)], 'return', undefined, undefined);
  t.equal(d.reply(reply), undefined);
  t.equal(reply.joins, 0, 'never joined');
  t.equal(big.got[0], `{"return": ["${body}"], "id": "s"}`);
  const ordinary = new CountedSpanned([Buffer.from(`{"error": {"class": "GenericError", "desc": "${body.slice(0, 30000)}`), Buffer.from(`${body.slice(30000)}"}}`)], 'error', undefined, undefined);
  t.equal(d.reply(ordinary), undefined, 'an ordinary error answers its command');
  t.equal(ordinary.joins, 0, 'judged by its first piece');
  const head = '{"error": {"class": "GenericError", "desc": "JSON parse error, ';
  const split = new CountedSpanned([Buffer.from(head.slice(0, 20)), Buffer.from(`${head.slice(20)}${body}"}}`)], 'error', undefined, undefined);
  t.equal(d.reply(split), 'an error QEMU reports only for input it could not read', 'a first piece too short for the head: joined to judge it');
  t.same(readerError.got, []);
});
