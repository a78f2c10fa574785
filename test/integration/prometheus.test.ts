import { spawn } from 'node:child_process';
import t from 'tap';
import { OpsServer } from '../../src/ops/http-server.ts';
import { MuxMetrics } from '../../src/ops/mux-metrics.ts';
import { needProgram } from '../fixtures/programs.ts';
import { startPrometheus } from '../fixtures/prometheus.ts';

/** A metric set with every metric in use, including a flood of made-up names and awkward label values. */
function populated(): MuxMetrics {
  const m = new MuxMetrics({ version: '0.1.0', ownCommands: ['__org.qmp-mux_query-proxy'] });
  const ep = m.endpoint('default', { clients: () => 2, outputQueuedBytes: () => 512 });
  const ro = m.endpoint('read-only', { clients: () => 0, outputQueuedBytes: () => 0 });
  m.setCommandNames(['query-status', 'stop', 'qmp_capabilities']);
  m.upstreamState('connecting');
  m.upstreamState('ready');
  m.upstreamState('connecting');
  m.upstreamState('ready');
  for (const e of [ep, ro]) {
    e.connected();
    e.ended('closed');
    e.ended('slow-reader');
    e.bytesIn(1234);
    e.bytesOut(5678);
  }
  ep.commandDone('qmp_capabilities', 'return', 0.00002);
  ep.commandDone('query-status', 'return', 0.0004, 0.0003);
  ep.commandDone('stop', 'GenericError', 0.2, 0.19);
  ep.commandDone('__org.qmp-mux_query-proxy', 'return', 0.00003);
  ro.refused('stop');
  for (let i = 0; i < 1000; i++) ep.commandDone(`"weird\\name\n${i}`, 'CommandNotFound', 0.00001);
  m.event('STOP');
  m.event('RESUME');
  m.upstreamBytesIn(999);
  m.upstreamBytesOut(888);
  m.auditDropped(3);
  return m;
}

/** Runs `promtool check metrics` on `text`: its exit status and what it printed. */
function promtoolCheck(text: string): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, output }));
    child.stdin.end(text);
  });
}

t.test('promtool check metrics accepts the exposition of a populated metric set', async (t) => {
  if (!needProgram(t, 'promtool', 'prometheus')) return;
  const text = populated().render();
  t.match(text, /qmpmux_commands_total\{endpoint="default",command="other",outcome="CommandNotFound"\} 1000/);
  t.same(await promtoolCheck(text), { status: 0, output: '' });
  // The check does look: a broken exposition is refused.
  const broken = await promtoolCheck(text.replace('# TYPE qmpmux_commands_total counter', '# TYPE qmpmux_commands_total gauge'));
  t.not(broken.status, 0, broken.output);
});

t.test('a real Prometheus scrapes qmp-mux and sees a command counter move', async (t) => {
  if (!needProgram(t, 'prometheus', 'prometheus')) return;
  const began = Date.now();
  const m = new MuxMetrics({ version: '0.1.0', ownCommands: [] });
  const ep = m.endpoint('default', { clients: () => 1, outputQueuedBytes: () => 0 });
  m.setCommandNames(['query-status']);
  m.upstreamState('ready');
  ep.commandDone('query-status', 'return', 0.0004, 0.0003);
  // Each rendering is a scrape beginning. Prometheus scrapes a target one scrape
  // at a time and stores each before it starts the next.
  let renders = 0;
  const waiting: { count: number; resolve: () => void }[] = [];
  const server = new OpsServer(
    {
      metrics: () => {
        const text = m.render();
        renders++;
        for (const w of waiting) if (renders >= w.count) w.resolve();
        return text;
      },
      notReady: () => undefined,
      status: () => '{}',
    },
    { address: { type: 'tcp', host: '127.0.0.1', port: 0 } },
  );
  t.teardown(() => server.stop());
  const { port } = await server.start();
  /** Resolves once `count` scrapes have begun. */
  const scrapes = (count: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`fewer than ${count} scrapes within 20 s`)), 20_000);
      waiting.push({ count, resolve: () => (clearTimeout(timer), resolve()) });
    });
  const prometheus = await startPrometheus(t, port);
  await scrapes(1);
  // Commands between the first scrape and the second.
  ep.commandDone('query-status', 'return', 0.0004, 0.0003);
  ep.commandDone('query-status', 'return', 0.0004, 0.0003);
  // The third scrape has begun: the second is stored.
  await scrapes(3);
  const series = '{command="query-status",endpoint="default",outcome="return"}';
  const counter = 'qmpmux_commands_total{command="query-status",outcome="return"}';
  const history = await prometheus.query(`${counter}[1m]`);
  t.same(history[series]?.slice(0, 2), ['1', '3'], 'the counter moved from 1 to 3 between two scrapes');
  t.same(await prometheus.query(counter), { [series]: ['3'] });
  t.same(await prometheus.query('qmpmux_qemu_command_duration_seconds_count'), { '{command="query-status"}': ['3'] });
  t.same(await prometheus.query('up'), { '{}': ['1'] }, 'Prometheus sees the target up');
  t.comment(`took ${Date.now() - began} ms (Prometheus holds its first scrape about 5 s)`);
});
