import t from 'tap';
import { FakeQemu, replyTo } from '../fixtures/fake-qemu.ts';
import { startMux } from '../fixtures/mux.ts';
import { TestClient } from '../fixtures/qmp-client.ts';

/**
 * `query-proxy`'s `counters.errors` is every error reply clients got, from
 * QEMU and from qmp-mux, as the README says; `/metrics` counts the same
 * replies by outcome.
 */

const errorsOf = async (c: TestClient): Promise<number> => (JSON.parse(await c.execute('__org.qmp-mux_query-proxy')) as { return: { counters: { errors: number } } }).return.counters.errors;

t.test("counters.errors: QEMU's errors, refusals, garbage, and errors of qmp-mux's own commands", async (t) => {
  const fake = await FakeQemu.start(t, {
    respond: (cmd, raw) => (cmd.execute === 'nope' ? replyTo(raw, { error: '{"class": "CommandNotFound", "desc": "The command nope has not been found"}' }) : replyTo(raw, { return: '{}' })),
  });
  const mux = await startMux(t, fake.path, { endpoints: [{ policy: { allow: ['*'], deny: ['quit'] } }] });
  const c = await TestClient.connect(mux.path);
  await c.negotiate();
  t.equal(await errorsOf(c), 0, 'none at first');
  t.match(await c.execute('nope'), /CommandNotFound/);
  t.equal(await errorsOf(c), 1, "QEMU's error");
  t.match(await c.execute('quit'), /not allowed/);
  t.equal(await errorsOf(c), 2, 'a refusal');
  t.match(await c.execute('__org.qmp-mux_query-events', { since: -1 }), /"desc": "Parameter 'since' expects uint64"/);
  t.equal(await errorsOf(c), 3, "an argument error of qmp-mux's own command");
  t.match(await c.execute('__org.qmp-mux_nonexistent'), /CommandNotFound/);
  t.equal(await errorsOf(c), 4, 'an unknown command with qmp-mux\'s prefix');
  t.match(await c.execute('__org.qmp-mux_query-proxy', { verbose: true }), /Parameter 'verbose' is unexpected/);
  t.equal(await errorsOf(c), 5);
  const metrics = mux.mux.metrics.render();
  t.match(metrics, /qmpmux_commands_total\{endpoint="ep0",command="__org\.qmp-mux_query-events",outcome="GenericError"\} 1\n/, '/metrics counts the own command\'s error too');
  t.match(metrics, /qmpmux_commands_total\{endpoint="ep0",command="__org\.qmp-mux_query-proxy",outcome="GenericError"\} 1\n/);
});

t.test('counters.errors: a reply from QEMU too long to pass on, which its client gets as an error', async (t) => {
  const fake = await FakeQemu.start(t, {
    respond: (cmd, raw) => (cmd.execute === 'big' ? replyTo(raw, { return: `"${'x'.repeat(70 * 1024)}"` }) : replyTo(raw, { return: '{}' })),
  });
  const mux = await startMux(t, fake.path, { maxUpstreamMessage: 64 * 1024 });
  const c = await TestClient.connect(mux.path);
  await c.negotiate();
  t.match(await c.execute('big'), /"error"/);
  t.equal(await errorsOf(c), 1);
});
