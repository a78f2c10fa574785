import { spawn } from 'node:child_process';
import { get } from 'node:http';
import { join } from 'node:path';
import t from 'tap';
import { MuxMetrics } from '../../src/ops/mux-metrics.ts';
import { runCli } from '../fixtures/cli.ts';
import { eventually } from '../fixtures/context.ts';
import { needProgram } from '../fixtures/programs.ts';
import { startPrometheus } from '../fixtures/prometheus.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { TestClient } from '../fixtures/qmp-client.ts';
import { socketDir } from '../fixtures/tmp.ts';

/** A metric set with every metric in use, including a flood of made-up names and awkward label values. */
function populated(): MuxMetrics {
  const m = new MuxMetrics({ version: '0.1.0', ownCommands: ['__org.qmp-mux_query-proxy'], upstreamState: () => 'ready', auditDropped: () => 3, oldestCommandAge: () => 0.25, queuedInputBytes: () => 100 });
  const ep = m.endpoint('default', { clients: () => 2, outputQueuedBytes: () => 512 });
  const ro = m.endpoint('read-only', { clients: () => 0, outputQueuedBytes: () => 0 });
  m.upstreamReady();
  m.upstreamLost();
  m.upstreamReady();
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

/** GET `path` on the HTTP listener at `port`: status and body. */
function fetchText(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

t.test('a real Prometheus scrapes a real qmp-mux, and sees a command counter move as clients run commands', async (t) => {
  if (!needQemu(t) || !needProgram(t, 'prometheus', 'prometheus') || !needProgram(t, 'promtool', 'prometheus')) return;
  const began = Date.now();
  const qemu = await startQemu(t);
  const sock = join(socketDir(t), 'm.sock');
  const run = runCli(t, ['--upstream', `unix:${qemu.monitors[0]}`, '--listen', `unix:${sock}`, '--metrics', 'tcp:127.0.0.1:0']);
  const port = Number((await run.waitFor(/metrics at http:\/\/127\.0\.0\.1:(\d+)\/metrics/))[1]);
  await run.waitFor(/QEMU connected/);
  const prometheus = await startPrometheus(t, port);
  const counter = 'qmpmux_commands_total{command="query-status",outcome="return"}';
  const series = '{command="query-status",endpoint="default",outcome="return"}';
  const seen = (value: string) => eventually(async () => (await prometheus.query(counter))[series]?.[0] === value, `Prometheus to see ${counter} at ${value}`, { intervalMs: 250 });
  const c = await TestClient.connect(sock);
  await c.negotiate();
  await c.execute('query-status');
  await seen('1');
  await c.execute('query-status');
  await c.execute('query-status');
  await seen('3');
  const history = await prometheus.query(`${counter}[1m]`);
  t.ok(history[series]?.includes('1') && history[series]?.at(-1) === '3', `the counter moved from 1 to 3 (${history[series]?.join(', ')})`);
  t.same(await prometheus.query('qmpmux_qemu_command_duration_seconds_count{command="query-status"}'), { '{command="query-status"}': ['3'] }, 'QEMU\'s own time, three times');
  t.same(await prometheus.query('qmpmux_upstream_state{state="ready"}'), { '{state="ready"}': ['1'] });
  t.same(await prometheus.query('up'), { '{}': ['1'] }, 'Prometheus sees the target up');
  const exposition = await fetchText(port, '/metrics');
  t.equal(exposition.status, 200);
  t.same(await promtoolCheck(exposition.body), { status: 0, output: '' }, 'qmp-mux\'s own exposition passes promtool');
  t.comment(`took ${Date.now() - began} ms (Prometheus holds its first scrape about 5 s)`);
});

t.test('probes: /healthz while alive, /readyz only while QEMU is there, /status even while it is away', async (t) => {
  if (!needQemu(t)) return;
  const dir = socketDir(t);
  const qemu = await startQemu(t, { dir, names: ['vm.qmp'] });
  const sock = join(dir, 'm.sock');
  const run = runCli(t, ['--upstream', `unix:${qemu.monitors[0]}`, '--listen', `unix:${sock}`, '--metrics', 'tcp:127.0.0.1:0']);
  const port = Number((await run.waitFor(/metrics at http:\/\/127\.0\.0\.1:(\d+)\/metrics/))[1]);
  await run.waitFor(/QEMU connected/);
  t.same(await fetchText(port, '/readyz'), { status: 200, body: 'ready\n' });
  await qemu.stop();
  await run.waitFor(/QEMU disconnected/);
  t.same(await fetchText(port, '/healthz'), { status: 200, body: 'ok\n' }, 'alive');
  const ready = await fetchText(port, '/readyz');
  t.equal(ready.status, 503, 'not ready without QEMU');
  t.match(ready.body, /QEMU connection is connecting/);
  const status = JSON.parse((await fetchText(port, '/status')).body) as { proxy: { upstream: { state: string } }; clients: unknown[] };
  t.equal(status.proxy.upstream.state, 'connecting', '/status answers while QEMU is away, when no client could ask');
  t.same(status.clients, []);
});
