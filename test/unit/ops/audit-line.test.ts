import t from 'tap';
import { clientObject as args } from '../../fixtures/json-text.ts';
import { commandLine, droppedLine, errorClass, eventLine, isStateChanging, lockLine, type CommandEntry } from '../../../src/ops/audit-line.ts';

const TIME = new Date('2026-11-21T14:02:08.959Z');

function entry(over: Partial<CommandEntry> = {}): CommandEntry {
  return {
    endpoint: 'orchestrator',
    client: 3,
    peer: 'local#3',
    command: 'device_del',
    idText: '"del-1"',
    arguments: args('{"id": "net0"}'),
    outcome: 'return',
    qemuSeconds: 0.0004123456,
    ...over,
  };
}

t.test('state-changing: everything the read-only preset refuses', async (t) => {
  for (const name of ['query-status', 'x-query-numa', 'qom-get', 'qom-list', 'qom-list-types', 'device-list-properties', '__org.qmp-mux_query-events', '__org.qmp-mux_set-events']) {
    t.equal(isStateChanging(name), false, name);
  }
  for (const name of ['stop', 'cont', 'device_del', 'qom-set', 'human-monitor-command', 'qom-list-properties', 'quit', 'qmp_capabilities', 'queryfoo']) {
    t.equal(isStateChanging(name), true, name);
  }
});

t.test('a command line: exact bytes, and the fields as documented', async (t) => {
  const line = commandLine(TIME, entry(), true, 65536);
  t.equal(
    line,
    '{"time":"2026-11-21T14:02:08.959Z","type":"command","endpoint":"orchestrator","client":3,"peer":"local#3","command":"device_del",' +
      '"id":"del-1","arguments":{"id":"net0"},"outcome":"return","qemu-seconds":0.000412}\n',
  );
  t.same(JSON.parse(line), {
    time: '2026-11-21T14:02:08.959Z',
    type: 'command',
    endpoint: 'orchestrator',
    client: 3,
    peer: 'local#3',
    command: 'device_del',
    id: 'del-1',
    arguments: { id: 'net0' },
    outcome: 'return',
    'qemu-seconds': 0.000412,
  });
  t.equal(
    commandLine(TIME, entry({ idText: undefined, arguments: undefined, outcome: 'refused', qemuSeconds: undefined }), true, 65536),
    '{"time":"2026-11-21T14:02:08.959Z","type":"command","endpoint":"orchestrator","client":3,"peer":"local#3","command":"device_del","outcome":"refused"}\n',
    'no id, no arguments, no QEMU time',
  );
  t.notMatch(commandLine(TIME, entry(), false, 65536), /arguments/, 'arguments left out when not recorded');
  t.match(commandLine(TIME, entry({ outcome: 'DeviceNotFound', qemuSeconds: 2 }), false, 65536), /,"outcome":"DeviceNotFound","qemu-seconds":2}\n$/);
});

t.test('ids and arguments as the client sent them, digits intact', async (t) => {
  const line = commandLine(
    TIME,
    entry({ idText: '{"n": 18446744073709551615, "s": "info"}', arguments: args('{"size": 18446744073709551615, "f": 1e400, "s": "caf\\u00e9"}') }),
    true,
    65536,
  );
  t.match(line, /"id":\{"n": 18446744073709551615, "s": "info"\},"arguments":\{"size":18446744073709551615,"f":1e400,"s":"café"\}/);
  t.same(JSON.parse(line).arguments, { size: 18446744073709551615, f: Infinity, s: 'café' });
  for (const idText of ['inf', '-inf', 'nan', '[1, inf]']) {
    const l = commandLine(TIME, entry({ idText }), false, 65536);
    t.equal(JSON.parse(l)['id-text'], idText, `${idText}: QEMU's non-JSON number kept as text under id-text`);
    t.notOk('id' in JSON.parse(l));
  }
});

t.test('the cap: arguments first, then id, then command name; always valid JSON within the cap', async (t) => {
  const big = args(`{"data": "${'\\"'.repeat(3000)}x", "n": 1}`);
  const full = commandLine(TIME, entry({ arguments: big }), true, 1 << 20);
  t.equal(commandLine(TIME, entry({ arguments: big }), true, Buffer.byteLength(full) - 1), full, 'a line exactly at the cap is whole');
  const cut = commandLine(TIME, entry({ arguments: big }), true, 1024);
  t.ok(Buffer.byteLength(cut) - 1 <= 1024, 'within the cap');
  const parsed = JSON.parse(cut);
  t.notOk('arguments' in parsed);
  t.equal(parsed['arguments-truncated'].bytes, Buffer.byteLength('{"data":"' + '\\"'.repeat(3000) + 'x","n":1}'));
  t.ok(('{"data":"' + '\\"'.repeat(3000)).startsWith(parsed['arguments-truncated'].prefix), 'the prefix is the start of the arguments text');
  t.ok(parsed['arguments-truncated'].prefix.length > 300, 'and fills the room left (not just a token)');
  t.equal(parsed.id, 'del-1', 'the id is kept when cutting arguments is enough');

  const hugeId = `"${'i'.repeat(5000)}"`;
  const hugeCommand = 'c'.repeat(5000);
  const both = JSON.parse(commandLine(TIME, entry({ idText: hugeId, command: hugeCommand, arguments: big }), true, 1024));
  t.ok(both['arguments-truncated'] && both['id-truncated'] && both['command-truncated'], 'all three cut');
  t.equal(both['id-truncated'].bytes, 5002);
  t.equal(both['command-truncated'].bytes, 5000);
  for (const cap of [1024, 1100, 1500, 2000, 5000, 9000]) {
    const l = commandLine(TIME, entry({ idText: hugeId, command: hugeCommand, arguments: big }), true, cap);
    t.ok(Buffer.byteLength(l) - 1 <= cap, `cap ${cap}: ${Buffer.byteLength(l) - 1} bytes`);
    t.doesNotThrow(() => JSON.parse(l), `cap ${cap}: valid JSON`);
  }
  const unicode = JSON.parse(commandLine(TIME, entry({ command: '\u00e9\u{1F600}'.repeat(2000), arguments: undefined }), false, 1024));
  t.ok(unicode['command-truncated'].prefix.length > 0, 'non-ASCII text cut without breaking the line');
});

t.test('an event line, and one cut to the cap', async (t) => {
  const bytes = Buffer.from('{"timestamp": {"seconds": 1732197728, "microseconds": 959123}, "event": "STOP"}', 'latin1');
  t.equal(
    eventLine(TIME, { name: 'STOP', seq: 12, bytes }, 65536),
    '{"time":"2026-11-21T14:02:08.959Z","type":"event","event":"STOP","seq":12,' +
      '"message":{"timestamp": {"seconds": 1732197728, "microseconds": 959123}, "event": "STOP"}}\n',
  );
  t.notMatch(eventLine(TIME, { name: 'STOP', seq: undefined, bytes }, 65536), /seq/);
  const big = Buffer.from(`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "X", "data": {"s": "${'a'.repeat(4000)}"}}`, 'latin1');
  const cut = eventLine(TIME, { name: 'X', seq: 1, bytes: big }, 1024);
  t.ok(Buffer.byteLength(cut) - 1 <= 1024);
  t.equal(JSON.parse(cut)['message-truncated'].bytes, big.length);
  const odd = Buffer.from('{"event": "X", "data": {"ratio": inf}}', 'latin1');
  t.equal(JSON.parse(eventLine(TIME, { name: 'X', seq: 2, bytes: odd }, 65536))['message-text'], odd.toString('latin1'));
});

t.test('the line that marks dropped entries', async (t) => {
  t.equal(droppedLine(TIME, 17), '{"time":"2026-11-21T14:02:08.959Z","type":"dropped","entries":17}\n');
});

t.test('the error class of a reply, read off its bytes', async (t) => {
  const cases: [string, string][] = [
    ['{"error": {"class": "GenericError", "desc": "Parameter \'id\' is missing"}}', 'GenericError'],
    ['{"id": 5, "error": {"class": "DeviceNotFound", "desc": "Device \'x\' not found"}}', 'DeviceNotFound'],
    ['{"id": {"error": {"class": "Fake"}}, "error": {"class": "CommandNotFound", "desc": "x"}}', 'CommandNotFound'],
    ['{"id": "\\"error\\": {\\"class\\": \\"Fake", "error": {"class": "KVMMissingCap", "desc": "\\"error\\": {\\"class\\": \\"Fake"}}', 'KVMMissingCap'],
    ['{"return": {}}', 'error'],
  ];
  for (const [reply, expected] of cases) t.equal(errorClass(Buffer.from(reply, 'latin1')), expected, reply);
});

t.test('lock lines: granted with its lease and wait, ended with why and how long; a reason that escapes long is cut to fit', async (t) => {
  const who = { endpoint: 'backup', client: 3, peer: 'local#3', mode: 'write' };
  t.equal(
    lockLine(TIME, { action: 'granted', ...who, reason: 'nightly', leaseMs: 60000, seconds: 0.0123456789 }, 65536),
    '{"time":"2026-11-21T14:02:08.959Z","type":"lock","action":"granted","endpoint":"backup","client":3,"peer":"local#3","mode":"write","reason":"nightly","lease-ms":60000,"waited-seconds":0.012346}\n',
  );
  t.equal(
    lockLine(TIME, { action: 'ended', why: 'lease', ...who, reason: undefined, seconds: 61 }, 65536),
    '{"time":"2026-11-21T14:02:08.959Z","type":"lock","action":"ended","why":"lease","endpoint":"backup","client":3,"peer":"local#3","mode":"write","held-seconds":61}\n',
  );
  t.equal(
    lockLine(TIME, { action: 'granted', ...who, identity: 'admin', subject: 'O=Example,CN=admin', reason: undefined, leaseMs: 0, seconds: 0 }, 65536),
    '{"time":"2026-11-21T14:02:08.959Z","type":"lock","action":"granted","endpoint":"backup","client":3,"peer":"local#3","identity":"admin","subject":"O=Example,CN=admin","mode":"write","lease-ms":0,"waited-seconds":0}\n',
    'with the identity and subject of a client that has them, as command lines',
  );
  const long = lockLine(TIME, { action: 'ended', why: 'unlock', ...who, reason: '\u0001'.repeat(256), seconds: 1 }, 1024);
  t.ok(Buffer.byteLength(long) <= 1025, 'within the cap');
  t.match(JSON.parse(long), { type: 'lock', 'reason-truncated': { bytes: 256, prefix: /^\u0001+$/ }, 'held-seconds': 1 });
});
