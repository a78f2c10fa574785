import t from 'tap';
import { JsonStreamer } from '../../../src/json/streamer.ts';
import type { JsonValue } from '../../../src/json/value.ts';
import { judgeRequest, type Request, type RequestContext } from '../../../src/qmp/request.ts';

function parse(text: string): JsonValue {
  let v: JsonValue | undefined;
  new JsonStreamer((m) => (v = m.value)).feed(Buffer.from(text + ' '));
  if (v === undefined) throw new Error(`fixture does not parse: ${text}`);
  return v;
}

const negotiating: RequestContext = { negotiated: false, oob: false };
const plain: RequestContext = { negotiated: true, oob: false };
const withOob: RequestContext = { negotiated: true, oob: true };

function judge(text: string, ctx: RequestContext): Request {
  return judgeRequest(parse(text), ctx);
}

function error(idText: string | undefined, desc: string, oob = false, errorClass = 'GenericError'): Request {
  return { kind: 'error', idText, oob, errorClass, desc } as Request;
}

t.test('structural errors, with the id where QEMU echoes it', async (t) => {
  t.same(judge('[1]', plain), error(undefined, 'QMP input must be a JSON object'));
  t.same(judge('"x"', plain), error(undefined, 'QMP input must be a JSON object'));
  t.same(judge('null', plain), error(undefined, 'QMP input must be a JSON object'));
  t.same(judge('{}', plain), error(undefined, "QMP input lacks member 'execute'"));
  t.same(judge('{"id":5}', plain), error('5', "QMP input lacks member 'execute'"));
  t.same(judge('{"execute":1,"id":"a"}', plain), error('"a"', "QMP input member 'execute' must be a string"));
  t.same(judge('{"execute":"x","foo":1,"id":[1]}', plain), error('[1]', "QMP input member 'foo' is unexpected"));
  t.same(judge('{"execute":"x","arguments":[],"id":1}', plain), error('1', "QMP input member 'arguments' must be an object"));
  t.same(judge('{"execute":"x","arguments":null}', plain), error(undefined, "QMP input member 'arguments' must be an object"));
  t.same(judge('{"execute":"x","control":{"run-oob":true},"id":1}', plain), error('1', "QMP input member 'control' is unexpected"));
});

t.test('exec-oob', async (t) => {
  t.same(judge('{"exec-oob":"yank","id":1}', plain), error('1', "QMP input member 'exec-oob' is unexpected"), 'oob not enabled: answered in its turn');
  t.same(judge('{"execute":"x","exec-oob":"y","id":1}', plain), error('1', "QMP input member 'exec-oob' is unexpected"), 'with execute it is in-band');
  t.same(judge('{"execute":"x","exec-oob":"y","id":1}', withOob), error('1', "QMP input member 'execute' clashes with 'exec-oob'"));
  t.same(judge('{"exec-oob":5}', withOob), error(undefined, "QMP input member 'exec-oob' must be a string", true));
  t.same(judge('{"exec-oob":"qmp_capabilities","id":2}', withOob), error('2', 'The command qmp_capabilities does not support OOB', true));
  t.same(judge('{"exec-oob":"migrate-pause","id":3}', withOob), { kind: 'command', idText: '3', oob: true, name: 'migrate-pause', args: undefined });
});

t.test('member order decides which problem is reported, as in QEMU', async (t) => {
  // QEMU walks its hash table: 'foo' comes before 'execute' there, whatever the text order.
  const a = judge('{"execute":1,"foo":1}', plain);
  const b = judge('{"foo":1,"execute":1}', plain);
  t.same(a, b);
});

t.test('negotiation mode', async (t) => {
  t.same(judge('{"execute":"query-status","id":1}', negotiating), error('1', "Expecting capabilities negotiation with 'qmp_capabilities'", false, 'CommandNotFound'));
  t.same(judge('{"execute":"query-status"}', negotiating), error(undefined, "Expecting capabilities negotiation with 'qmp_capabilities'", false, 'CommandNotFound'));
  t.same(judge('{"execute":"qmp-capabilities"}', negotiating).kind, 'error', 'names are exact');
  t.same(judge('{"execute":"qmp_capabilities"}', negotiating), { kind: 'negotiate', idText: undefined, enable: [] });
  t.same(judge('{"execute":"qmp_capabilities","arguments":{"enable":["oob"]},"id":"n"}', negotiating), { kind: 'negotiate', idText: '"n"', enable: ['oob'] });
  t.same(judge('{"execute":"qmp_capabilities","arguments":{"enable":"oob"}}', negotiating), error(undefined, "Invalid parameter type for 'enable', expected: array"));
  t.same(judge('{"execute":"qmp_capabilities","arguments":{"enable":null}}', negotiating), error(undefined, "Invalid parameter type for 'enable', expected: array"));
  t.same(judge('{"execute":"qmp_capabilities","arguments":{"enable":["oob",1]}}', negotiating), error(undefined, "Invalid parameter type for 'enable[1]', expected: string"));
  t.same(judge('{"execute":"qmp_capabilities","arguments":{"enable":["foo"]}}', negotiating), error(undefined, "Parameter 'null' does not accept value 'foo'"));
  t.same(judge('{"execute":"qmp_capabilities","arguments":{"bogus":1}}', negotiating), error(undefined, "Parameter 'bogus' is unexpected"));
  t.same(judge('{"execute":"qmp_capabilities","arguments":{"bogus":1,"enable":"x"}}', negotiating), error(undefined, "Invalid parameter type for 'enable', expected: array"), 'members before extras');
});

t.test('command mode', async (t) => {
  t.same(judge('{"execute":"qmp_capabilities","id":1}', plain), error('1', 'Capabilities negotiation is already complete, command ignored', false, 'CommandNotFound'));
  t.same(judge('{"execute":"qmp_capabilities","arguments":{"x":2}}', plain), error(undefined, "Parameter 'x' is unexpected"), 'arguments are checked first');
  const cmd = judge('{"execute":"query-status","id":{"b":1,"a":2}}', plain);
  t.equal(cmd.kind, 'command');
  t.equal(cmd.idText, '{"a": 2, "b": 1}', 'id kept as QEMU would echo it');
});
