import t from 'tap';
import { feed, newSession } from '../../fixtures/session-host.ts';
import type { ReplySlot } from '../../../src/qmp/monitor-session.ts';

const NEG = '{"execute":"qmp_capabilities"}';

t.test('negotiation is per session and answered locally', async (t) => {
  const { sides, session } = newSession();
  feed(session, '{"execute":"query-status","id":1}');
  t.same(sides.output(), ['{"id": 1, "error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with \'qmp_capabilities\'"}}']);
  t.equal(sides.commands.length, 0, 'nothing goes toward QEMU before negotiation');
  feed(session, '{"execute":"qmp_capabilities","arguments":{"enable":["oob"]},"id":"n"}');
  t.same(sides.output(), ['{"return": {}, "id": "n"}']);
  t.equal(session.state, 'command');
  t.equal(session.oob, true);
  t.equal(sides.negotiatedCalls, 1, 'the client side hears of it (and has it take events)');
  feed(session, NEG);
  t.same(sides.output(), ['{"error": {"class": "CommandNotFound", "desc": "Capabilities negotiation is already complete, command ignored"}}']);
});

t.test('a capability that was not offered is refused and negotiation can be retried', async (t) => {
  const { sides, session } = newSession([]);
  feed(session, '{"execute":"qmp_capabilities","arguments":{"enable":["oob","oob"]}}');
  t.same(sides.output(), ['{"error": {"class": "GenericError", "desc": "Capability oob, oob not available"}}']);
  t.equal(session.state, 'negotiating');
  t.equal(sides.negotiatedCalls, 0);
  feed(session, NEG);
  t.same(sides.output(), ['{"return": {}}']);
  t.equal(session.oob, false);
});

t.test('events only after negotiation, never replayed', async (t) => {
  const { sides, session } = newSession();
  session.event(Buffer.from('{"event": "STOP"}\r\n'));
  t.same(sides.output(), []);
  feed(session, NEG);
  sides.output();
  session.event(Buffer.from('{"event": "RESUME"}\r\n'));
  t.same(sides.output(), ['{"event": "RESUME"}']);
});

t.test('valid commands go toward QEMU as judged, with the id as QEMU would echo it', async (t) => {
  const { sides, session } = newSession();
  feed(session, NEG);
  feed(session, "{'execute':'qu\\u0069t','arguments':{'a':18446744073709551615},'id':1E2}");
  const { command } = sides.take();
  t.equal(command.name, 'quit');
  t.equal(command.idText, '100');
  t.equal(command.oob, false);
  t.equal(command.args?.size, 1);
});

t.test('replies in request order; local errors wait behind pending commands', async (t) => {
  const { sides, session } = newSession();
  feed(session, NEG);
  sides.output();
  feed(session, '{"execute":"a","id":1}{"execute":"b","id":2}garbage{"execute":"c","id":3}');
  t.same(sides.output(), [], 'nothing may overtake the pending commands');
  const [a, b, c] = [sides.take(), sides.take(), sides.take()];
  t.same([a.command.name, b.command.name, c.command.name], ['a', 'b', 'c']);
  t.equal(session.pending, 4);
  b.reply.fill('B');
  t.same(sides.output(), [], 'b waits for a');
  a.reply.fill('A');
  t.same(sides.output(), ['A', 'B', `{"error": {"class": "GenericError", "desc": "JSON parse error, invalid keyword 'garbage'"}}`]);
  c.reply.fill('C');
  t.same(sides.output(), ['C']);
  t.equal(session.pending, 0);
});

t.test('a reply filled at once (a refusal) keeps its place too', async (t) => {
  const { sides, session } = newSession();
  feed(session, NEG);
  sides.output();
  feed(session, '{"execute":"slow","id":1}');
  feed(session, '{"execute":"refused","id":2}');
  sides.commands[1]!.reply.fill('REFUSED');
  t.same(sides.output(), [], 'behind the slow one');
  sides.commands[0]!.reply.fill('SLOW');
  t.same(sides.output(), ['SLOW', 'REFUSED']);
});

t.test('exec-oob goes at once and its reply is not held', async (t) => {
  const { sides, session } = newSession();
  feed(session, '{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}');
  sides.output();
  feed(session, '{"execute":"slow","id":1}{"exec-oob":"migrate-pause","id":2}');
  const [slow, oob] = [sides.take(), sides.take()];
  t.equal(oob.command.oob, true);
  t.equal(oob.command.name, 'migrate-pause');
  t.equal(session.pending, 2);
  oob.reply.fill('OOB');
  t.same(sides.output(), ['OOB'], 'overtakes the in-band reply');
  slow.reply.fill('SLOW');
  t.same(sides.output(), ['SLOW']);
});

t.test('without oob, an exec-oob is refused in its turn: QEMU reads nothing more until each request is answered', async (t) => {
  const { sides, session } = newSession();
  feed(session, NEG);
  sides.output();
  feed(session, '{"execute":"slow","id":1}{"exec-oob":"yank","id":2}');
  t.same(sides.output(), [], 'held behind the reply owed before it');
  sides.take().reply.fill('SLOW');
  t.same(sides.output(), ['SLOW', `{"id": 2, "error": {"class": "GenericError", "desc": "QMP input member 'exec-oob' is unexpected"}}`]);
});

t.test('with oob, out-of-band replies overtake in-band ones but never each other, errors qmp-mux makes included', async (t) => {
  const { sides, session } = newSession();
  feed(session, '{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}');
  sides.output();
  feed(session, '{"execute":"slow","id":0}{"exec-oob":"a","id":1}{"exec-oob":"qmp_capabilities","id":2}{"exec-oob":"b","id":3}');
  const [slow, a, b] = [sides.take(), sides.take(), sides.take()];
  t.equal(session.pending, 4);
  t.same(sides.output(), [], 'the error waits for the out-of-band reply owed before it');
  b.reply.fill('B');
  t.same(sides.output(), [], 'a later reply waits too');
  a.reply.fill('A');
  t.same(sides.output(), ['A', '{"id": 2, "error": {"class": "GenericError", "desc": "The command qmp_capabilities does not support OOB"}}', 'B'], 'in the order read, ahead of the in-band reply');
  t.equal(session.pending, 1);
  slow.reply.fill('SLOW');
  t.same(sides.output(), ['SLOW']);
});

t.test('half-close: finished once everything is answered', async (t) => {
  const { sides, session } = newSession();
  feed(session, NEG + '{"execute":"a"}');
  session.endInput();
  t.equal(sides.finishedCalls, 0);
  sides.take().reply.fill('A');
  t.equal(sides.finishedCalls, 1);
});

t.test('a closed session writes nothing and hands nothing on', async (t) => {
  const { sides, session } = newSession();
  feed(session, NEG + '{"execute":"a"}');
  sides.output();
  const a = sides.take();
  session.close();
  session.close();
  a.reply.fill('late');
  session.event(Buffer.from('E'));
  feed(session, '{"execute":"c"}');
  t.same(sides.output(), []);
  t.equal(sides.commands.length, 0);
});

t.test('pending limit: reached, then room again', async (t) => {
  const { sides, session } = newSession(['oob'], 2);
  feed(session, '{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}{"execute":"a"}');
  t.equal(session.atPendingLimit, false);
  feed(session, '{"exec-oob":"b"}');
  t.equal(session.atPendingLimit, true, 'out-of-band requests count');
  sides.take().reply.fill('A');
  t.equal(session.atPendingLimit, false);
  t.equal(sides.belowLimitCalls, 1);
  sides.take().reply.fill('B');
  t.equal(sides.belowLimitCalls, 1, 'said once per time the limit was reached');
});

t.test('new limits (a reload) hold from the next byte: message size and pending requests', async (t) => {
  const { sides, session } = newSession(['oob'], 1);
  feed(session, NEG + '{"execute":"a"}');
  sides.output();
  t.equal(session.atPendingLimit, true);
  session.setLimits({ maxMessageSize: 16, maxTokens: 1000, maxNesting: 10 }, 5);
  t.equal(session.atPendingLimit, false, 'more pending requests allowed now');
  t.equal(sides.belowLimitCalls, 1, 'and the client side is told it may be read again');
  feed(session, '{"execute":"query-status"}');
  sides.take().reply.fill('A\r\n');
  t.same(sides.output().slice(0, 2), ['A', '{"error": {"class": "GenericError", "desc": "JSON token size limit exceeded"}}'], 'a message past the new size limit gets QEMU\'s limit error (after the reply owed before it)');
});

t.test("a turn's reading ends at the message whose reply, made at once, takes its replies past the byte budget", async (t) => {
  const { sides, session } = newSession();
  feed(session, NEG);
  sides.output();
  const big = `{"return": "${'x'.repeat(40_000)}"}\r\n`;
  // qmp-mux's own commands are answered as they are handed on; these are, with 40 KB each.
  const answerAtOnce = (_command: unknown, reply: ReplySlot): void => reply.fill(big);
  sides.command = answerAtOnce;
  const input = Buffer.from('{"execute":"a"}{"execute":"b"}{"execute":"c"}{"execute":"d"}');
  const read = session.receive(input, 16, 65_536);
  t.equal(read, 30, 'a and b read: b took the replies to 80 KB, past 64 KiB');
  t.equal(sides.output().length, 2);
  t.equal(session.receive(input.subarray(read), 16, 65_536), 30, 'the next call counts anew');
  t.equal(sides.output().length, 2);
  t.equal(session.receive(input, 16), input.length, 'without a budget, all of it');
  t.equal(sides.output().length, 4);

  // Replies that come later (QEMU's) are not the reading's doing.
  const held: ReplySlot[] = [];
  sides.command = (_command, reply) => void held.push(reply);
  t.equal(session.receive(input, 16, 65_536), input.length);
  for (const reply of held) reply.fill(big);
  t.equal(sides.output().length, 4, "QEMU's replies, 160 KB");
  sides.command = answerAtOnce;
  t.equal(session.receive(input, 16, 65_536), 30, 'and they do not count toward the next reading');
});
