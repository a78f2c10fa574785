import t from 'tap';
import { Dispatcher } from '../../../src/proxy/dispatcher.ts';
import { UpstreamFramer, type UpstreamMessage } from '../../../src/qmp/upstream-framer.ts';
import { feed, newSession } from '../../fixtures/session-host.ts';

const NEG = '{"execute":"qmp_capabilities"}';

/** A dispatcher wired to a recording upstream. */
function setup(window = 3) {
  const sent: string[] = [];
  const d = new Dispatcher(window);
  d.attach((text) => sent.push(text));
  const answer = (text: string): boolean => {
    let m: UpstreamMessage | undefined;
    new UpstreamFramer({ message: (x) => (m = x), garbage: () => undefined }, Infinity).feed(Buffer.from(text));
    return d.reply(m!);
  };
  /** Answers the oldest sent command with `{"return": tag}`. */
  const answerNext = (tag: string): void => {
    const cmd = sent.shift()!;
    const id = /"id":(\d+)\}$/.exec(cmd)![1];
    answer(`{"return": "${tag}", "id": ${id}}`);
  };
  return { sent, d, answer, answerNext };
}

function client(d: Dispatcher) {
  const { host, session } = newSession();
  host.commandsQueued = () => d.wake(session);
  feed(session, NEG);
  host.take();
  return { host, session };
}

t.test('what goes upstream is qmp-mux\'s own serialization with its own id', async (t) => {
  const { sent, d } = setup();
  const a = client(d);
  feed(a.session, "{'execute': 'qu\\u0069t', 'arguments': {'x': 18446744073709551615, 'y': \"a\\u00e9\"}, 'id': 7}");
  t.same(sent, ['{"execute":"quit","arguments":{"x":18446744073709551615,"y":"a\\u00E9"},"id":0}']);
  feed(a.session, '{"execute":"stop","arguments":{}}');
  t.equal(sent[1], '{"execute":"stop","id":1}', 'empty arguments are left out; ids are short');
});

t.test('window bounds what is in flight; replies go back with the client id', async (t) => {
  const { sent, d, answerNext } = setup(2);
  const a = client(d);
  feed(a.session, '{"execute":"x","id":"one"}{"execute":"x","id":"two"}{"execute":"x"}');
  t.equal(sent.length, 2);
  t.equal(d.stats.inBandInFlight, 2);
  answerNext('r1');
  t.same(a.host.take(), ['{"return": "r1", "id": "one"}']);
  t.equal(sent.length, 2, 'the third went once there was room');
  answerNext('r2');
  answerNext('r3');
  t.same(a.host.take(), ['{"return": "r2", "id": "two"}', '{"return": "r3"}']);
});

t.test('round robin: a long queue delays another client by at most the window', async (t) => {
  const window = 3;
  const { d, answerNext } = setup(window);
  const busy = client(d);
  const quiet = client(d);
  feed(busy.session, '{"execute":"busy"}'.repeat(2000));
  feed(quiet.session, '{"execute":"quiet","id":"q"}');
  let answered = 0;
  while (quiet.host.written.length === 0 && answered < 2000) {
    answerNext(`r${answered++}`);
  }
  t.ok(answered <= window + 1, `quiet client answered after ${answered} replies`);
  t.same(quiet.host.take(), [`{"return": "r${answered - 1}", "id": "q"}`]);
});

t.test('a client with the same ids as another never sees its replies', async (t) => {
  const { sent, d, answerNext } = setup(10);
  const a = client(d);
  const b = client(d);
  feed(a.session, '{"execute":"x","id":1}');
  feed(b.session, '{"execute":"x","id":1}');
  t.equal(sent.length, 2);
  answerNext('for-a');
  answerNext('for-b');
  t.same(a.host.take(), ['{"return": "for-a", "id": 1}']);
  t.same(b.host.take(), ['{"return": "for-b", "id": 1}']);
});

t.test('late replies for a client that left are dropped; unknown ids too', async (t) => {
  const { sent, d, answer, answerNext } = setup(10);
  const a = client(d);
  const b = client(d);
  feed(a.session, '{"execute":"x","id":1}');
  a.session.close();
  answerNext('late');
  t.same(a.host.take(), []);
  t.same(b.host.take(), []);
  t.equal(answer('{"return": {}, "id": "someone-else"}'), false);
  t.equal(answer('{"return": {}}'), false);
  for (const id of ['0', '99', '-1', '1.5', '12345678901234567890']) t.equal(answer(`{"return": {}, "id": ${id}}`), false, `id ${id} is not in flight`);
  t.equal(d.stats.droppedReplies, 7);
  t.equal(sent.length, 0);
  t.equal(d.stats.inFlight, 0);
});

t.test('exec-oob bypasses the window', async (t) => {
  const { sent, d, answer } = setup(1);
  const { host, session } = newSession();
  host.commandsQueued = () => d.wake(session);
  host.sendOob = (s, c) => d.sendOob(s, c);
  feed(session, '{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}');
  host.take();
  feed(session, '{"execute":"a","id":1}{"execute":"b","id":2}{"exec-oob":"yank","id":3}');
  t.equal(sent.length, 2, 'one in-band (window 1) and the oob one');
  t.match(sent[1], /^\{"exec-oob":"yank","id":\d+\}$/);
  const oobId = /"id":(\d+)/.exec(sent[1]!)![1];
  answer(`{"return": {}, "id": ${oobId}}`);
  t.same(host.take(), ['{"return": {}, "id": 3}']);
});

t.test('ids are reused once answered, so they stay short', async (t) => {
  const { sent, d, answerNext } = setup(3);
  const a = client(d);
  for (let i = 0; i < 100; i++) {
    feed(a.session, '{"execute":"x"}');
    answerNext(`r${i}`);
  }
  t.equal(a.host.take().length, 100);
  feed(a.session, '{"execute":"x"}{"execute":"x"}{"execute":"x"}');
  t.same(sent.map((c) => /"id":(\d+)/.exec(c)![1]), ['0', '1', '2'], 'never more ids than commands in flight');
});
