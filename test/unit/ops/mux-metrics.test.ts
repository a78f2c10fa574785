import { readFileSync } from 'node:fs';
import t from 'tap';
import { LockMetrics } from '../../../src/ops/lock-metrics.ts';
import { MAX_COMMAND_NAMES, MAX_EVENT_NAMES, MuxMetrics, type EndpointMetrics } from '../../../src/ops/mux-metrics.ts';
import type { UpstreamState } from '../../../src/upstream/connection.ts';

const OWN = ['__org.qmp-mux_query-clients', '__org.qmp-mux_query-proxy'];

/** What the metrics ask the mux when scraped; tests set it. */
const probe = { state: 'connecting' as UpstreamState, auditDropped: 0, oldest: 0, queued: 0 };

function setUp(now: () => number = () => 0): { m: MuxMetrics; ep: EndpointMetrics } {
  probe.state = 'connecting';
  probe.auditDropped = 0;
  probe.oldest = 0;
  probe.queued = 0;
  const m = new MuxMetrics({
    version: '1.2.3',
    ownCommands: OWN,
    now,
    upstreamState: () => probe.state,
    auditDropped: () => probe.auditDropped,
    oldestCommandAge: () => probe.oldest,
    queuedInputBytes: () => probe.queued,
  });
  const ep = m.endpoint('default', { clients: () => 3, outputQueuedBytes: () => 4096 });
  return { m, ep };
}

/** Every sample line of the exposition whose name starts with `prefix`. */
function lines(text: string, prefix: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(prefix));
}

/** Uses every part of the metric set once. */
function populate(m: MuxMetrics, ep: EndpointMetrics): void {
  probe.state = 'ready';
  m.upstreamReady();
  ep.connected();
  ep.ended('closed');
  ep.commandDone('query-status', 'return', 0.0003, 0.0002);
  ep.refused('stop');
  ep.bytesIn(100);
  ep.bytesOut(200);
  m.event('STOP');
  m.upstreamBytesIn(300);
  m.upstreamBytesOut(400);
  probe.auditDropped = 2;
  probe.oldest = 1.5;
  probe.queued = 4096;
  m.upstreamStalled();
  m.upstreamTooLarge('reply');
}

t.test('the metric set has the names, types and labels the README documents', async (t) => {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  const documented = [...readme.matchAll(/^\| `(qmpmux_\w+)` \| (\w+) \|([^|]*)\|/gm)].map(([, name, type, labels]) =>
    [name, type, [...labels!.matchAll(/`(\w+)`/g)].map((l) => l[1]).join(',')].join(' '),
  );
  t.ok(documented.length > 10, 'the README lists the metrics');
  const { m, ep } = setUp();
  populate(m, ep);
  // The lock's metrics are registered with the rest (as the mux does).
  const lock = new LockMetrics(m.registry, { modes: ['write', 'exclusive'], current: () => ({ mode: 'write', endpoint: 'default', seconds: 2 }), waitingCommands: () => 1 });
  lock.granted('default', 'write');
  lock.ended('default', 'unlock', 1);
  lock.waited('default');
  const text = m.render();
  const exposed = [...text.matchAll(/^# TYPE (\S+) (\S+)\n(\S+?)(?:\{([^}]*)\})? /gm)].map(([, name, type, , labels]) =>
    [name, type, [...(labels ?? '').matchAll(/(\w+)="/g)].map((l) => l[1]).filter((l) => l !== 'le').join(',')].join(' '),
  );
  t.same(exposed, documented);
  const helps = lines(text, '# HELP');
  t.equal(helps.length, documented.length);
  t.same(helps.filter((l) => !/^# HELP qmpmux_\w+ \S/.test(l)), [], 'every metric has help text');
});

t.test('what the data path reports shows in the exposition', async (t) => {
  let clock = 1000;
  const { m, ep } = setUp(() => clock);
  populate(m, ep);
  ep.commandDone('query-status', 'GenericError', 0.002);
  ep.commandDone('query-status', 'return', 0.004, 0.003);
  ep.commandDone('__org.qmp-mux_query-proxy', 'return', 0.00005);
  ep.commandDone('stop', 'SomeNewClass', 0.001, 0.001);
  clock += 2500;
  const text = m.render();
  t.same(lines(text, 'qmpmux_commands_total'), [
    'qmpmux_commands_total{endpoint="default",command="__org.qmp-mux_query-proxy",outcome="return"} 1',
    'qmpmux_commands_total{endpoint="default",command="other",outcome="refused"} 1',
    'qmpmux_commands_total{endpoint="default",command="query-status",outcome="GenericError"} 1',
    'qmpmux_commands_total{endpoint="default",command="query-status",outcome="return"} 2',
    'qmpmux_commands_total{endpoint="default",command="stop",outcome="other"} 1',
  ], '"stop" was refused before QEMU had answered it: other');
  t.same(lines(text, 'qmpmux_command_duration_seconds_count'), [
    'qmpmux_command_duration_seconds_count{command="__org.qmp-mux_query-proxy"} 1',
    'qmpmux_command_duration_seconds_count{command="query-status"} 3',
    'qmpmux_command_duration_seconds_count{command="stop"} 1',
  ]);
  t.same(lines(text, 'qmpmux_qemu_command_duration_seconds_count'), [
    'qmpmux_qemu_command_duration_seconds_count{command="query-status"} 2',
    'qmpmux_qemu_command_duration_seconds_count{command="stop"} 1',
  ]);
  t.same(lines(text, 'qmpmux_qemu_command_duration_seconds_bucket{command="query-status",le="0.0025"}'), [
    'qmpmux_qemu_command_duration_seconds_bucket{command="query-status",le="0.0025"} 1',
  ]);
  t.same(lines(text, 'qmpmux_commands_refused_total'), ['qmpmux_commands_refused_total{endpoint="default"} 1']);
  t.same(lines(text, 'qmpmux_clients'), ['qmpmux_clients{endpoint="default"} 3']);
  t.same(lines(text, 'qmpmux_client_output_queued_bytes'), ['qmpmux_client_output_queued_bytes{endpoint="default"} 4096']);
  t.same(lines(text, 'qmpmux_client_'), [
    'qmpmux_client_received_bytes_total{endpoint="default"} 100',
    'qmpmux_client_sent_bytes_total{endpoint="default"} 200',
    'qmpmux_client_output_queued_bytes{endpoint="default"} 4096',
  ]);
  t.same(lines(text, 'qmpmux_upstream_'), [
    'qmpmux_upstream_received_bytes_total 300',
    'qmpmux_upstream_sent_bytes_total 400',
    'qmpmux_upstream_state{state="connecting"} 0',
    'qmpmux_upstream_state{state="greeting"} 0',
    'qmpmux_upstream_state{state="negotiating"} 0',
    'qmpmux_upstream_state{state="ready"} 1',
    'qmpmux_upstream_state{state="stopped"} 0',
    'qmpmux_upstream_reconnects_total 0',
    'qmpmux_upstream_oldest_command_age_seconds 1.5',
    'qmpmux_upstream_stalls_total 1',
    'qmpmux_upstream_too_large_total{kind="reply"} 1',
    'qmpmux_upstream_connected_seconds 2.5',
  ]);
  t.same(lines(text, 'qmpmux_queued_input_bytes'), ['qmpmux_queued_input_bytes 4096']);
  t.same(lines(text, 'qmpmux_connections_'), [
    'qmpmux_connections_accepted_total{endpoint="default"} 1',
    'qmpmux_connections_ended_total{endpoint="default",reason="closed"} 1',
  ]);
  t.same(lines(text, 'qmpmux_events_total'), ['qmpmux_events_total{event="STOP"} 1']);
  t.same(lines(text, 'qmpmux_audit_entries_dropped_total'), ['qmpmux_audit_entries_dropped_total 2']);
  t.same(lines(text, 'qmpmux_build_info'), ['qmpmux_build_info{version="1.2.3"} 1']);
});

t.test('reconnects count negotiated connections after the first; the connected time restarts and is absent meanwhile', async (t) => {
  let clock = 0;
  const { m } = setUp(() => clock);
  t.same(lines(m.render(), 'qmpmux_upstream_connected_seconds'), [], 'absent before QEMU is there');
  m.upstreamReady();
  clock = 10_000;
  t.same(lines(m.render(), 'qmpmux_upstream_connected_seconds '), ['qmpmux_upstream_connected_seconds 10']);
  m.upstreamLost();
  t.same(lines(m.render(), 'qmpmux_upstream_connected_seconds'), []);
  m.upstreamReady();
  clock = 11_000;
  probe.state = 'negotiating';
  const text = m.render();
  t.same(lines(text, 'qmpmux_upstream_reconnects_total'), ['qmpmux_upstream_reconnects_total 1']);
  t.same(lines(text, 'qmpmux_upstream_connected_seconds '), ['qmpmux_upstream_connected_seconds 1']);
  t.same(lines(text, 'qmpmux_upstream_state{'), ['connecting', 'greeting', 'negotiating', 'ready', 'stopped'].map((s) => `qmpmux_upstream_state{state="${s}"} ${s === 'negotiating' ? 1 : 0}`), 'the state the mux is in, asked when scraped');
});

t.test('a hostile client sending a flood of distinct command names adds no series', async (t) => {
  const { m, ep } = setUp();
  ep.commandDone('query-status', 'return', 0.001, 0.001);
  for (let i = 0; i < 50_000; i++) {
    ep.commandDone(`x-made-up-${i}`, 'CommandNotFound', 0.0001);
    ep.refused(`denied-${i}`);
    ep.commandDone('query-status', `Class${i}`, 0.001, 0.001);
  }
  const text = m.render();
  t.same(lines(text, 'qmpmux_commands_total'), [
    'qmpmux_commands_total{endpoint="default",command="other",outcome="CommandNotFound"} 50000',
    'qmpmux_commands_total{endpoint="default",command="other",outcome="refused"} 50000',
    'qmpmux_commands_total{endpoint="default",command="query-status",outcome="other"} 50000',
    'qmpmux_commands_total{endpoint="default",command="query-status",outcome="return"} 1',
  ]);
  t.equal(lines(text, 'qmpmux_command_duration_seconds_count').length, 2);
  t.ok(text.length < 20_000, `the exposition stays small (${text.length} bytes)`);
});

t.test('a name is counted as itself once QEMU has answered it as a command it has; qmp-mux\'s own always are', async (t) => {
  const { m, ep } = setUp();
  ep.refused('stop');
  ep.commandDone('stop', 'CommandNotFound', 0.001, 0.001);
  ep.commandDone('__org.qmp-mux_query-clients', 'return', 0.001);
  ep.commandDone('stop', 'GenericError', 0.001, 0.001);
  ep.refused('stop');
  ep.commandDone('query-status', 'return', 0.001);
  t.same(lines(m.render(), 'qmpmux_commands_total'), [
    'qmpmux_commands_total{endpoint="default",command="__org.qmp-mux_query-clients",outcome="return"} 1',
    'qmpmux_commands_total{endpoint="default",command="other",outcome="CommandNotFound"} 1',
    'qmpmux_commands_total{endpoint="default",command="other",outcome="refused"} 1',
    'qmpmux_commands_total{endpoint="default",command="other",outcome="return"} 1',
    'qmpmux_commands_total{endpoint="default",command="stop",outcome="GenericError"} 1',
    'qmpmux_commands_total{endpoint="default",command="stop",outcome="refused"} 1',
  ], 'refused and not-found before QEMU knew it: other; answered by QEMU: by name from then on; answered by qmp-mux alone: not admitted');
});

t.test('names are admitted up to the cap', async (t) => {
  const { m, ep } = setUp();
  const names = Array.from({ length: MAX_COMMAND_NAMES + 500 }, (_, i) => `cmd-${i}`);
  for (const n of names) ep.commandDone(n, 'return', 0.001, 0.001);
  const counts = lines(m.render(), 'qmpmux_command_duration_seconds_count');
  t.equal(counts.length, MAX_COMMAND_NAMES - OWN.length + 1);
  t.ok(counts.includes('qmpmux_command_duration_seconds_count{command="other"} ' + String(500 + OWN.length)));
});

t.test('event names and disconnect reasons are bounded too', async (t) => {
  const { m, ep } = setUp();
  for (let i = 0; i < MAX_EVENT_NAMES + 50; i++) m.event(`EVENT_${i}`);
  for (let i = 0; i < 100; i++) ep.ended(`reason-${i}`);
  const text = m.render();
  t.equal(lines(text, 'qmpmux_events_total').length, MAX_EVENT_NAMES + 1);
  t.same(lines(text, 'qmpmux_events_total{event="other"}'), ['qmpmux_events_total{event="other"} 50']);
  t.equal(lines(text, 'qmpmux_connections_ended_total').length, 33);
});

t.test('several endpoints: each its own series; a name seen again (a reload brought it back) goes on with its series and its new probe', async (t) => {
  const { m, ep } = setUp();
  const other = m.endpoint('ro', { clients: () => 0, outputQueuedBytes: () => 0 });
  ep.commandDone('quit', 'return', 0.001, 0.001);
  other.refused('quit');
  const text = m.render();
  t.same(lines(text, 'qmpmux_commands_total'), [
    'qmpmux_commands_total{endpoint="default",command="quit",outcome="return"} 1',
    'qmpmux_commands_total{endpoint="ro",command="quit",outcome="refused"} 1',
  ]);
  t.same(lines(text, 'qmpmux_clients'), ['qmpmux_clients{endpoint="default"} 3', 'qmpmux_clients{endpoint="ro"} 0']);
  const again = m.endpoint('ro', { clients: () => 5, outputQueuedBytes: () => 0 });
  t.equal(again, other, 'the same handle');
  again.refused('quit');
  t.match(m.render(), /qmpmux_commands_total\{endpoint="ro",command="quit",outcome="refused"\} 2\n/, 'its series go on');
  t.match(m.render(), /qmpmux_clients\{endpoint="ro"\} 5\n/, 'its new probe is asked');
});
