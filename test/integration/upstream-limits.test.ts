import t from 'tap';
import { POLICY_PRESETS } from '../../src/policy/presets.ts';
import { allowMore } from '../fixtures/context.ts';
import { FakeQemu } from '../fixtures/fake-qemu.ts';
import { startMux } from '../fixtures/mux.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { TestClient } from '../fixtures/qmp-client.ts';

/**
 * What qmp-mux writes to QEMU stays within QEMU's limits on one message, on
 * the bytes it really writes; so QEMU never reads a command other than the
 * one qmp-mux validated, and never owes a reply qmp-mux does not expect.
 */

const MAX_TOKENS = 2 * 1024 * 1024;
/** QEMU's own limits on one message, in place of qmp-mux's smaller defaults. */
const AT_QEMU_LIMITS = { maxMessageSize: 64 * 1024 * 1024, maxCommandBytes: 64 * 1024 * 1024 - 1, maxInputBytes: 128 * 1024 * 1024 };
/** `{"execute":"query-status","arguments":{"a":[0,...]}}` with `tokens` tokens (13 + 2n for n zeros). */
const zeros = (tokens: number, verb = 'execute', name = 'query-status', id = ''): string =>
  `{"${verb}":"${name}","arguments":{"a":[${Array((tokens - 13) / 2).fill('0').join(',')}]}${id}}`;

/**
 * How long QEMU takes to read `message` through qmp-mux, ms, measured on a
 * sample of the same kind: QEMU reads one byte per system call, 1.4 to 14 µs
 * a byte by machine, more on a busy one.
 */
async function readingTime(c: TestClient, message: string): Promise<number> {
  const sample = zeros(128 * 1024 + 13);
  const started = performance.now();
  c.send(sample);
  await c.next();
  return ((performance.now() - started) / sample.length) * message.length;
}

t.test('the most tokens QEMU reads in one message, through qmp-mux: answered as QEMU answers, and nothing wedges', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t);
  const mux = await startMux(t, qemu.monitors[0]!, { limits: AT_QEMU_LIMITS });
  const c = await TestClient.connect(mux.path);
  await c.negotiate();
  const most = zeros(MAX_TOKENS - 1);
  // tap's timeout stays the only clock, stretched to fit this machine as it is now (with room for it to get busier).
  const expected = await readingTime(c, most);
  allowMore(4 * expected, `QEMU reads ${(most.length / 2 ** 20).toFixed(1)} MiB, about ${(expected / 1000).toFixed(1)} s here`);
  c.send(most);
  t.equal(await c.next(), '{"error": {"class": "GenericError", "desc": "Parameter \'a\' is unexpected"}}', 'QEMU\'s own answer (qmp-mux adds nothing to an in-band command)');
  t.equal(await c.execute('query-name', undefined, 'next'), '{"return": {}, "id": "next"}', 'and the next command is answered');
  t.match(mux.mux.describe().counters, { replyMismatches: 0 });
});

t.test('an out-of-band command that would pass QEMU\'s token limit with qmp-mux\'s id is refused, never sent', async (t) => {
  const fake = await FakeQemu.start(t);
  const mux = await startMux(t, fake.path, { limits: AT_QEMU_LIMITS });
  const c = await TestClient.connect(mux.path);
  await c.negotiate(true);
  // 2 Mi - 1 tokens with no id: qmp-mux's id (4 tokens) would take it past QEMU's limit.
  c.send(zeros(MAX_TOKENS - 1, 'exec-oob', 'query-yank'));
  t.equal(await c.next(), '{"error": {"class": "GenericError", "desc": "The command query-yank does not fit in one QEMU message once re-encoded by qmp-mux (2097155 tokens; QEMU reads at most 2097152)"}}');
  c.send(zeros(MAX_TOKENS - 5, 'exec-oob', 'query-yank', ',"id":"fits"'));
  t.match(await c.next(), /^\{"id": "fits", "error": \{"class": "GenericError", "desc": "The command query-yank is larger than endpoint 'ep0' accepts \(\d+ bytes as sent to QEMU; the limit for exec-oob is 1024\)"\}\}$/, 'four tokens fewer would fit QEMU, but an out-of-band command that large is never sent');
  c.send(zeros(13 + 2 * 100, 'exec-oob', 'query-yank', ',"id":"small"'));
  t.equal(await c.next(), '{"return": {}, "id": "small"}', 'a small one goes');
  t.equal(fake.received.length, 2, 'QEMU saw qmp-mux\'s negotiation and the small one');
});

t.test('a read-only endpoint cannot smuggle a command past QEMU\'s size limit', async (t) => {
  const fake = await FakeQemu.start(t);
  const readOnly = { policy: { allow: [...POLICY_PRESETS['read-only'].allow], deny: [...POLICY_PRESETS['read-only'].deny] } };
  const mux = await startMux(t, fake.path, { endpoints: [readOnly], limits: AT_QEMU_LIMITS });
  const c = await TestClient.connect(mux.path);
  await c.negotiate();
  // A single-quoted string may hold `"` raw; qmp-mux writes it as `\"`: 35 MiB become 70.
  const quotes = '"'.repeat(35 * 1024 * 1024);
  c.send(`{'execute':'query-status','arguments':{'a':'${quotes}','b':{'execute':'stop'}}}`);
  t.match(await c.next(), /^\{"error": \{"class": "GenericError", "desc": "The command query-status does not fit in one QEMU message once re-encoded by qmp-mux \(73400\d+ bytes; QEMU reads at most 67108863\)"\}\}$/);
  t.equal(fake.received.length, 1, 'nothing of it reached QEMU');
  t.ok(mux.logs.some((l) => l.includes('refused a command too large') && l.includes('command=query-status')), 'logged, naming the command');
  // DEL, which QEMU reads raw, goes raw: one byte each (not the six of \u007F, which would count against the limit).
  const del = '\x7f'.repeat(1024 * 1024);
  c.send(`{"execute":"query-status","arguments":{"a":"${del}"},"id":"del"}`);
  t.equal(await c.next(), '{"return": {}, "id": "del"}');
  t.equal(fake.received[1]!.length, del.length + '{"execute":"query-status","arguments":{"a":""}}'.length, 'one byte per DEL on the wire');
});
