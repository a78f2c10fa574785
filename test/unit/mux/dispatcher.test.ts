import t from 'tap';
import { JsonNumber, type JsonObject } from '../../../src/json/value.ts';
import { Dispatcher, type UpstreamCommand } from '../../../src/mux/dispatcher.ts';
import type { ReplySlot } from '../../../src/qmp/session.ts';
import { frameOne } from '../../../src/qmp/upstream-framer.ts';
import { encodeCommand } from '../../../src/qmp/wire.ts';

/** A dispatcher wired to a recording upstream. */
function setup(window = 3) {
  const sent: string[] = [];
  const d = new Dispatcher(window);
  d.attach((bytes) => sent.push(bytes.toString('utf8')));
  /** QEMU's reply (compact, as QEMU writes it); the dispatcher's verdict. */
  const answer = (text: string): string | undefined => d.reply(frameOne(Buffer.from(text))!);
  return { sent, d, answer };
}

function command(name: string, idText?: string, options: { oob?: boolean; args?: JsonObject } = {}): UpstreamCommand {
  const bytes = encodeCommand(name, options.args, options.oob ?? false);
  if (!Buffer.isBuffer(bytes)) throw new Error(bytes.tooLarge);
  return { name, bytes, oob: options.oob ?? false, idText };
}

/** A reply slot recording what it gets. */
function slot(): ReplySlot & { got: string[]; lostCalls: number } {
  const got: string[] = [];
  const s = {
    got,
    lostCalls: 0,
    fill: (r: string | Buffer) => void got.push(r.toString().replace(/\r\n$/, '')),
    lost: () => void s.lostCalls++,
  };
  return s;
}

t.test('in-band commands go without an id; the client\'s id goes back where QEMU puts it', async (t) => {
  const { sent, d, answer } = setup();
  const lane = d.lane();
  const [one, two, three] = [slot(), slot(), slot()];
  lane.enqueue(command('query-status', '"a"'), one);
  lane.enqueue(command('stop', '{"x": [1]}'), two);
  lane.enqueue(command('cont'), three);
  t.same(sent, ['{"execute":"query-status"}', '{"execute":"stop"}', '{"execute":"cont"}']);
  t.equal(answer('{"return": {"status": "running"}}'), undefined);
  t.equal(answer('{"error": {"class": "GenericError", "desc": "no"}}'), undefined);
  t.equal(answer('{"return": {}}'), undefined);
  t.same(one.got, ['{"return": {"status": "running"}, "id": "a"}'], 'id last in a return');
  t.same(two.got, ['{"id": {"x": [1]}, "error": {"class": "GenericError", "desc": "no"}}'], 'id first in an error');
  t.same(three.got, ['{"return": {}}'], 'no id when the client sent none');
});

t.test('window bounds what is in flight; the rest goes as replies come', async (t) => {
  const { sent, d, answer } = setup(2);
  const lane = d.lane();
  const slots = [slot(), slot(), slot()];
  for (const [i, s] of slots.entries()) lane.enqueue(command('x', String(i)), s);
  t.equal(sent.length, 2);
  t.equal(d.stats.inBandInFlight, 2);
  answer('{"return": 1}');
  t.equal(sent.length, 3, 'the third went once there was room');
  answer('{"return": 2}');
  answer('{"return": 3}');
  t.same(slots.map((s) => s.got), [['{"return": 1, "id": 0}'], ['{"return": 2, "id": 1}'], ['{"return": 3, "id": 2}']]);
  t.same(d.stats, { inBandInFlight: 0, inFlight: 0, sent: 3 });
});

t.test('round robin: a long queue delays another client by at most the window', async (t) => {
  const window = 3;
  const { sent, d, answer } = setup(window);
  const busy = d.lane();
  const quiet = d.lane();
  for (let i = 0; i < 2000; i++) busy.enqueue(command('busy'), slot());
  const q = slot();
  quiet.enqueue(command('quiet', '"q"'), q);
  let answered = 0;
  while (q.got.length === 0 && answered < 2000) {
    answer(`{"return": ${answered}}`);
    answered++;
  }
  t.ok(answered <= window + 1, `quiet client answered after ${answered} replies`);
  t.same(q.got, [`{"return": ${answered - 1}, "id": "q"}`]);
  t.ok(sent.includes('{"execute":"quiet"}'));
});

t.test('a closed lane drops what it queued; a reply for a command already sent is still consumed in order', async (t) => {
  const { sent, d, answer } = setup(1);
  const leaving = d.lane();
  const staying = d.lane();
  const gone = slot();
  leaving.enqueue(command('first'), gone);
  leaving.enqueue(command('dropped'), slot());
  const mine = slot();
  staying.enqueue(command('mine', '7'), mine);
  leaving.close();
  leaving.enqueue(command('after-close'), slot());
  t.equal(answer('{"return": "for first"}'), undefined);
  t.same(gone.got, ['{"return": "for first"}'], 'the slot decides what to do with it (a closed session drops it)');
  t.equal(answer('{"return": "for mine"}'), undefined);
  t.same(mine.got, ['{"return": "for mine", "id": 7}']);
  t.same(sent, ['{"execute":"first"}', '{"execute":"mine"}'], 'neither the dropped nor the late command was sent');
});

t.test('replies that cannot answer anything in flight are reported, never delivered', async (t) => {
  const { d, answer } = setup(5);
  const s = slot();
  t.equal(answer('{"return": {}}'), 'a reply when none was owed');
  d.lane().enqueue(command('x', '1'), s);
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
  const { sent, d, answer } = setup(1);
  const lane = d.lane();
  lane.enqueue(command('a', '1'), slot());
  lane.enqueue(command('b', '2'), slot());
  const oob = slot();
  d.sendOob(command('yank', '"y"', { oob: true }), oob);
  t.same(sent, ['{"execute":"a"}', '{"exec-oob":"yank","id":0}'], 'one in-band (window 1) and the out-of-band one');
  t.equal(answer('{"id": 0, "error": {"class": "GenericError", "desc": "no"}}'), undefined, 'it may overtake');
  t.same(oob.got, ['{"id": "y", "error": {"class": "GenericError", "desc": "no"}}']);
  const quiet = slot();
  d.sendOob(command('yank', undefined, { oob: true }), quiet);
  t.equal(sent[2], '{"exec-oob":"yank","id":0}', 'its id is free again');
  answer('{"return": {}, "id": 0}');
  t.same(quiet.got, ['{"return": {}}'], 'our id removed when the client sent none');
  t.equal(answer('{"return": {}, "id": 0}'), 'a reply with an id qmp-mux did not give', 'an id answered once is not in flight any more');
});

t.test('out-of-band commands in flight together have ids of their own; replies in any order reach theirs', async (t) => {
  const { sent, d, answer } = setup(3);
  const [a, b] = [slot(), slot()];
  d.sendOob(command('yank', '"a"', { oob: true }), a);
  d.sendOob(command('yank', '"b"', { oob: true }), b);
  t.same(sent, ['{"exec-oob":"yank","id":0}', '{"exec-oob":"yank","id":1}']);
  t.equal(answer('{"return": "second", "id": 1}'), undefined);
  t.equal(answer('{"return": "first", "id": 0}'), undefined);
  t.same(a.got, ['{"return": "first", "id": "a"}']);
  t.same(b.got, ['{"return": "second", "id": "b"}']);
});

t.test('QEMU away: out-of-band commands wait and go first; in-flight replies are lost', async (t) => {
  const { sent, d } = setup(3);
  const inFlight = [slot(), slot()];
  d.lane().enqueue(command('a'), inFlight[0]!);
  d.sendOob(command('yank', undefined, { oob: true }), inFlight[1]!);
  d.detach();
  t.same(inFlight.map((s) => s.lostCalls), [1, 1], 'every command in flight is lost');
  const queued = slot();
  d.lane().enqueue(command('later'), queued);
  d.sendOob(command('query-yank', undefined, { oob: true }), slot());
  t.equal(sent.length, 2, 'nothing sent while QEMU is away');
  const again: string[] = [];
  d.attach((bytes) => again.push(bytes.toString()));
  t.same(again, ['{"exec-oob":"query-yank","id":0}', '{"execute":"later"}']);
});

t.test('idle resolves once nothing is queued or in flight', async (t) => {
  const { d, answer } = setup(1);
  await d.idle();
  const lane = d.lane();
  lane.enqueue(command('a'), slot());
  lane.enqueue(command('b'), slot());
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
  const { sent, d, answer } = setup(2);
  d.lane().enqueue(command('a'), slot());
  const reply = d.call('quit');
  t.same(sent, ['{"execute":"a"}', '{"execute":"quit"}']);
  answer('{"return": "a"}');
  answer('{"return": {}}');
  t.equal((await reply)?.toString(), '{"return": {}}\r\n');
  d.detach();
  t.equal(await d.call('quit'), undefined, 'QEMU away: no reply');
});

t.test('arguments are encoded digit for digit', async (t) => {
  const { sent, d } = setup();
  const args: JsonObject = new Map([['max-bandwidth', new JsonNumber('18446744073709551615', true)]]);
  d.lane().enqueue(command('migrate-set-parameters', undefined, { args }), slot());
  t.same(sent, ['{"execute":"migrate-set-parameters","arguments":{"max-bandwidth":18446744073709551615}}']);
});
