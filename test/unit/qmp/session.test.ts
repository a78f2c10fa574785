import t from 'tap';
import { feed, newSession } from '../../fixtures/session-host.ts';

const NEG = '{"execute":"qmp_capabilities"}';

t.test('negotiation is per session and answered locally', async (t) => {
  const { host, session } = newSession();
  feed(session, '{"execute":"query-status","id":1}');
  t.same(host.take(), ['{"id": 1, "error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with \'qmp_capabilities\'"}}']);
  feed(session, '{"execute":"qmp_capabilities","arguments":{"enable":["oob"]},"id":"n"}');
  t.same(host.take(), ['{"return": {}, "id": "n"}']);
  t.equal(session.state, 'command');
  t.equal(session.oob, true);
  t.equal(host.negotiatedCalls, 1);
  feed(session, NEG);
  t.same(host.take(), ['{"error": {"class": "CommandNotFound", "desc": "Capabilities negotiation is already complete, command ignored"}}']);
});

t.test('a capability that was not offered is refused and negotiation can be retried', async (t) => {
  const { host, session } = newSession([]);
  feed(session, '{"execute":"qmp_capabilities","arguments":{"enable":["oob","oob"]}}');
  t.same(host.take(), ['{"error": {"class": "GenericError", "desc": "Capability oob, oob not available"}}']);
  t.equal(session.state, 'negotiating');
  feed(session, NEG);
  t.same(host.take(), ['{"return": {}}']);
  t.equal(session.oob, false);
});

t.test('events only after negotiation, never replayed', async (t) => {
  const { host, session } = newSession();
  session.event(Buffer.from('{"event": "STOP"}\r\n'));
  t.same(host.take(), []);
  feed(session, NEG);
  host.take();
  session.event(Buffer.from('{"event": "RESUME"}\r\n'));
  t.same(host.take(), ['{"event": "RESUME"}']);
});

t.test('replies in request order; local errors wait behind pending commands', async (t) => {
  const { host, session } = newSession();
  feed(session, NEG);
  host.take();
  feed(session, '{"execute":"a","id":1}{"execute":"b","id":2}garbage{"execute":"c","id":3}');
  t.same(host.take(), [], 'nothing may overtake the pending commands');
  t.equal(session.queuedCommands, 3);
  const a = session.takeCommand()!;
  const b = session.takeCommand()!;
  const c = session.takeCommand()!;
  t.same([a.command.name, b.command.name, c.command.name], ['a', 'b', 'c']);
  t.equal(a.command.idText, '1');
  b.reply('B');
  t.same(host.take(), [], 'b waits for a');
  a.reply('A');
  t.same(host.take(), ['A', 'B', `{"error": {"class": "GenericError", "desc": "JSON parse error, invalid keyword 'garbage'"}}`]);
  c.reply('C');
  t.same(host.take(), ['C']);
});

t.test('exec-oob goes at once and its reply is not held', async (t) => {
  const { host, session } = newSession();
  feed(session, '{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}');
  host.take();
  feed(session, '{"execute":"slow","id":1}{"exec-oob":"migrate-pause","id":2}');
  t.equal(host.oob.length, 1);
  t.equal(host.oob[0]!.name, 'migrate-pause');
  t.equal(session.pending, 2);
  session.oobReply('OOB');
  t.same(host.take(), ['OOB'], 'overtakes the in-band reply');
  session.takeCommand()!.reply('SLOW');
  t.same(host.take(), ['SLOW']);
});

t.test('exec-oob errors are answered at once too', async (t) => {
  const { host, session } = newSession();
  feed(session, NEG);
  host.take();
  feed(session, '{"execute":"slow","id":1}{"exec-oob":"yank","id":2}');
  t.same(host.take(), [`{"id": 2, "error": {"class": "GenericError", "desc": "QMP input member 'exec-oob' is unexpected"}}`]);
});

t.test('half-close: finished once everything is answered', async (t) => {
  const { host, session } = newSession();
  feed(session, NEG + '{"execute":"a"}');
  session.endInput();
  t.equal(host.finishedCalls, 0);
  session.takeCommand()!.reply('A');
  t.equal(host.finishedCalls, 1);
});

t.test('a closed session writes nothing and forgets its queue', async (t) => {
  const { host, session } = newSession();
  feed(session, NEG + '{"execute":"a"}{"execute":"b"}');
  host.take();
  const a = session.takeCommand()!;
  session.close();
  t.equal(session.queuedCommands, 0);
  a.reply('late');
  session.event(Buffer.from('E'));
  feed(session, '{"execute":"c"}');
  t.same(host.take(), []);
});

t.test('pending limit: reached, then room again', async (t) => {
  const { host, session } = newSession(['oob'], 2);
  feed(session, NEG + '{"execute":"a"}');
  t.equal(session.atPendingLimit, false);
  feed(session, '{"execute":"b"}');
  t.equal(session.atPendingLimit, true);
  session.takeCommand()!.reply('A');
  t.equal(session.atPendingLimit, false);
  t.equal(host.belowLimitCalls, 1);
});
