import t from 'tap';
import { ClientSession, formatVersion, type QmpGreeting } from '../../../src/client/client-session.ts';
import { ConnectionError, type QmpMuxError } from '../../../src/errors.ts';
import type { JsonObject } from '../../../src/json/value.ts';
import { writeCompact } from '../../../src/json/writer.ts';
import { json } from '../../fixtures/json-text.ts';

const GREETING = '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2"}, "capabilities": ["oob"]}}';

/** A session with everything it does recorded. */
function session() {
  const log = { sent: [] as string[], ready: [] as QmpGreeting[], events: [] as string[], stray: [] as string[], failed: [] as QmpMuxError[] };
  const s = new ClientSession({
    send: (text) => log.sent.push(text),
    ready: (g) => log.ready.push(g),
    event: (e: JsonObject) => log.events.push(writeCompact(e).text),
    stray: (m) => log.stray.push(writeCompact(m).text),
    failed: (e) => log.failed.push(e),
  });
  const receive = (text: string): void => s.receive(json(text));
  return { s, log, receive };
}

/** A session that has negotiated. */
function ready() {
  const x = session();
  x.receive(GREETING);
  x.receive('{"return": {}, "id": 1}');
  return x;
}

t.test('greeting, then qmp_capabilities with no capability enabled, then ready', async (t) => {
  const { s, log, receive } = session();
  t.equal(s.state, 'greeting');
  receive(GREETING);
  t.equal(s.state, 'negotiating');
  t.same(log.sent, ['{"execute":"qmp_capabilities","id":1}'], 'oob is offered but not enabled');
  t.same(log.ready, []);
  receive('{"return": {}, "id": 1}');
  t.equal(s.state, 'ready');
  t.same(log.ready, [{ version: { qemu: { major: 7, minor: 2, micro: 22 }, package: 'Debian 1:7.2' }, capabilities: ['oob'] }]);
  t.equal(formatVersion(log.ready[0]!), '7.2.22 (Debian 1:7.2)');
  t.equal(formatVersion({ version: { qemu: { major: 9, minor: 0, micro: 50 }, package: '' }, capabilities: [] }), '9.0.50', 'no package: no parentheses');
});

t.test('commands get increasing integer ids; replies are matched by id, in any order', async (t) => {
  const { s, log, receive } = ready();
  const a = s.execute('query-status');
  const b = s.execute('migrate-set-parameters', json('{"max-bandwidth": 18446744073709551615}') as JsonObject);
  t.same(log.sent.slice(1), ['{"execute":"query-status","id":2}', '{"execute":"migrate-set-parameters","arguments":{"max-bandwidth":18446744073709551615},"id":3}']);
  receive('{"return": {}, "id": 3}');
  receive('{"return": {"status": "running", "big": 18446744073709551615}, "id": 2}');
  t.equal(writeCompact(await a).text, '{"status":"running","big":18446744073709551615}');
  t.equal(writeCompact(await b).text, '{}');
});

t.test('an error reply rejects with QmpError carrying the class and desc', async (t) => {
  const { s, receive } = ready();
  const p = s.execute('nope');
  receive('{"id": 2, "error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}');
  await t.rejects(p, { name: 'QmpError', code: 'QMPMUX_QMP_ERROR', command: 'nope', errorClass: 'CommandNotFound', desc: 'The command nope has not been found', message: 'CommandNotFound: The command nope has not been found' });
  const q = s.execute('odd');
  receive('{"id": 3, "error": "text"}');
  await t.rejects(q, { name: 'QmpError', errorClass: 'GenericError', desc: '"text"' }, 'a malformed error still rejects');
});

t.test('events are passed on at any time, also before the greeting', async (t) => {
  const { s, log, receive } = session();
  receive('{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "EARLY"}');
  receive(GREETING);
  receive('{"timestamp": {"seconds": 3, "microseconds": 4}, "event": "STOP"}');
  receive('{"return": {}, "id": 1}');
  t.equal(s.state, 'ready');
  t.same(log.events, ['{"timestamp":{"seconds":1,"microseconds":2},"event":"EARLY"}', '{"timestamp":{"seconds":3,"microseconds":4},"event":"STOP"}']);
});

t.test('replies to nothing of ours are dropped and reported as stray', async (t) => {
  const { s, log, receive } = ready();
  const p = s.execute('query-name');
  receive('{"return": {}, "id": "stale"}');
  receive('{"return": {}, "id": 99}');
  receive('{"id": 1, "error": {"class": "GenericError", "desc": "late"}}');
  receive('{"something": "else"}');
  t.equal(log.stray.length, 4);
  receive('{"return": {"name": "vm"}, "id": 2}');
  t.equal(writeCompact(await p).text, '{"name":"vm"}');
  t.same(log.failed, []);
});

t.test('a reply without id answers nothing we sent: the session fails', async (t) => {
  const { s, log, receive } = ready();
  const p = s.execute('query-status');
  receive('{"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}}');
  await t.rejects(p, { name: 'ProtocolError', message: /an error without id \(GenericError: JSON parse error, expecting value\)/ });
  t.equal(s.state, 'closed');
  t.equal(log.failed.length, 1);
  const other = ready();
  other.receive('{"return": {}}');
  t.match(other.log.failed[0]?.message, /a reply without id/);
});

t.test('a refusal before the greeting (qmp-mux over its client limit) is a connection error', async (t) => {
  const { s, log, receive } = session();
  receive('{"error": {"class": "GenericError", "desc": "Too many clients on endpoint \'x\' (at most 1)"}}');
  t.equal(s.state, 'closed');
  t.match(log.failed[0], { name: 'ConnectionError', message: "refused: GenericError: Too many clients on endpoint 'x' (at most 1)" });
});

t.test('what is not a greeting fails the session', async (t) => {
  const cases = ['{"return": {}}', '{"QMP": {"capabilities": []}}', '{"QMP": {"version": {"qemu": {"major": "7"}}}}', '{"QMP": {"version": 7}}'];
  for (const text of cases) {
    const { s, log, receive } = session();
    receive(text);
    t.equal(s.state, 'closed', text);
    t.match(log.failed[0], { name: 'ProtocolError', message: /^expected a QMP greeting, got / }, text);
  }
  const { log, receive } = session();
  receive(`{"junk": "${'x'.repeat(200)}"}`);
  t.match(log.failed[0]?.message, /\.\.\.$/, 'a long message is cut short');
  const lenient = session();
  lenient.receive('{"QMP": {"version": {"qemu": {"micro": 0, "minor": 1, "major": 2}}}}');
  lenient.receive('{"return": {}, "id": 1}');
  t.same(lenient.log.ready[0], { version: { qemu: { major: 2, minor: 1, micro: 0 }, package: '' }, capabilities: [] }, 'package and capabilities may be missing');
});

t.test('messages that are not objects fail the session', async (t) => {
  for (const [text, what] of [['[1]', 'an array'], ['"x"', '"x"'], ['5', 'the number 5']] as const) {
    const { log, receive } = session();
    receive(text);
    t.equal(log.failed[0]?.message, `the server sent ${what} where a JSON object belongs`);
  }
});

t.test('a refused negotiation fails the session', async (t) => {
  const { s, log, receive } = session();
  receive(GREETING);
  receive('{"id": 1, "error": {"class": "CommandNotFound", "desc": "Capabilities negotiation is already complete, command ignored"}}');
  t.equal(s.state, 'closed');
  t.match(log.failed[0], { name: 'ProtocolError', message: /^capabilities negotiation failed: CommandNotFound: / });
});

t.test('execute before ready or after close rejects; close rejects every waiting command', async (t) => {
  const { s, receive } = session();
  await t.rejects(s.execute('query-status'), { name: 'ConnectionError', message: 'the connection is not ready yet' });
  receive(GREETING);
  receive('{"return": {}, "id": 1}');
  const a = s.execute('a');
  const b = s.execute('b');
  s.close(new ConnectionError('gone'));
  await t.rejects(a, { message: 'gone' });
  await t.rejects(b, { message: 'gone' });
  await t.rejects(s.execute('c'), { message: 'the connection is closed' });
  receive('{"return": {}, "id": 2}');
  s.close(new ConnectionError('again'));
  t.equal(s.state, 'closed', 'closing twice and receiving after close are harmless');
});
