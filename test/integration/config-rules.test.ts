import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { runCli } from '../fixtures/cli.ts';
import { needQemu } from '../fixtures/qemu.ts';
import { startQemuReady } from '../fixtures/qemu-ready.ts';
import { socketDir } from '../fixtures/tmp.ts';

/**
 * One rule whether a setting comes from the command line or the file, and
 * what --print-config shows is what would run: the real command, as an
 * operator runs it.
 */

async function run(t: Test, args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const r = runCli(t, args, { cwd: socketDir(t) });
  const { code } = await r.exited;
  return { code, out: r.stdout(), err: r.stderr() };
}

t.test('--on-stop and --powerdown-timeout apply only when qmp-mux starts QEMU, on the command line as in the file', async (t) => {
  const dir = socketDir(t);
  const upstream = `unix:${join(dir, 'qemu.sock')}`;
  for (const mode of ['--check-config', '--print-config']) {
    t.same(await run(t, ['--upstream', upstream, '--on-stop', 'leave', mode]), {
      code: 2,
      out: '',
      err: "qmp-mux: --on-stop only applies when qmp-mux starts QEMU (spawn), not to a QEMU it connects to\ntry 'qmp-mux --help'\n",
    }, `${mode}: refused, not dropped`);
  }
  t.match(await run(t, ['--upstream', `listen:${upstream}`, '--powerdown-timeout', '5', '--print-config']), {
    code: 2,
    err: /^qmp-mux: --powerdown-timeout only applies when qmp-mux starts QEMU \(spawn\), not to a QEMU that connects to it\n/,
  });
  const file = join(dir, 'connect.json');
  writeFileSync(file, JSON.stringify({ upstream: { connect: upstream } }));
  t.match(await run(t, ['--config', file, '--on-stop', 'leave', '--print-config']), { code: 2, err: /--on-stop only applies when qmp-mux starts QEMU/ }, "with the file's connect upstream");
  const inFile = join(dir, 'leave.json');
  writeFileSync(inFile, JSON.stringify({ upstream: { connect: upstream, onStop: 'leave' } }));
  t.match(await run(t, ['--config', inFile, '--check-config']), { code: 2, err: /^qmp-mux: .*leave\.json: config\.upstream\.onStop: only applies with 'spawn'\n$/ }, 'the same in the file');
  const spawned = await run(t, ['--on-stop', 'leave', '--print-config']);
  t.equal(spawned.code, 0, 'with spawn it applies');
  t.match(JSON.parse(spawned.out), { upstream: { onStop: 'leave' } });
});

t.test('--takeover serves clients at QEMU\'s path alone: no default endpoint beside it, and --print-config says where', async (t) => {
  if (!needQemu(t)) return;
  const dir = socketDir(t);
  const qemu = await startQemuReady(t, { dir, names: ['vm.qmp'] });
  const path = qemu.monitors[0]!;
  const printed = await run(t, ['--upstream', `unix:${path}`, '--takeover', '--print-config']);
  t.equal(printed.code, 0);
  const config = JSON.parse(printed.out) as Record<string, unknown>;
  t.notOk('endpoints' in config, 'no endpoint but the takeover');
  t.match(config.upstream, { connect: `unix:${path}`, takeover: true, $comment: `clients also connect at unix:${path}, QEMU's own path, taken over: the endpoint 'takeover', with the mode and owner of QEMU's socket and every default` });
  const printedFile = join(dir, 'printed.json');
  writeFileSync(printedFile, printed.out);
  t.same(await run(t, ['--config', printedFile, '--print-config']), printed, 'read back, it prints the same');

  const mux = runCli(t, ['--upstream', `unix:${path}`, '--takeover'], { cwd: dir });
  await mux.waitFor(/QEMU connected/);
  t.equal(mux.stdout(), `qmp-mux: clients connect at unix:${path}  (try: socat - UNIX-CONNECT:${path})\n`, 'one endpoint, at QEMU\'s path');
  t.notMatch(mux.stderr(), /qmp-mux\.sock/, 'nothing listens at ./qmp-mux.sock');
  mux.child.kill('SIGTERM');
  t.same(await mux.exited, { code: 0, signal: null });

  const extra = join(dir, 'extra.sock');
  const both = runCli(t, ['--upstream', `unix:${path}`, '--takeover', '--listen', `unix:${extra}`], { cwd: dir });
  await both.waitFor(/QEMU connected/);
  t.match(both.stdout(), `clients connect at unix:${extra}`, '--listen adds an endpoint');
  t.match(both.stdout(), `clients connect at unix:${path}`);
  both.child.kill('SIGTERM');
  await both.exited;
});

t.test('--metrics names what it takes', async (t) => {
  t.same(await run(t, ['--metrics', '127.0.0.1:9464', '--check-config']), {
    code: 2,
    out: '',
    err: "qmp-mux: --metrics: '127.0.0.1:9464': the metrics listener takes tcp:HOST:PORT (Prometheus scrapes over TCP); did you mean tcp:127.0.0.1:9464?\ntry 'qmp-mux --help'\n",
  });
  t.match(await run(t, ['--metrics', 'unix:/run/m.sock', '--check-config']), { code: 2, err: "--metrics: 'unix:/run/m.sock': the metrics listener takes tcp:HOST:PORT (Prometheus scrapes over TCP)\n" });
  t.match(await run(t, ['--metrics', 'tcp:localhost', '--check-config']), { code: 2, err: "--metrics: 'tcp:localhost': expected tcp:HOST:PORT\n" });
  const file = join(socketDir(t), 'm.json');
  writeFileSync(file, JSON.stringify({ metrics: { listen: '[::1]:9464' } }));
  t.match(await run(t, ['--config', file, '--check-config']), { code: 2, err: "config.metrics.listen: '[::1]:9464': the metrics listener takes tcp:HOST:PORT (Prometheus scrapes over TCP); did you mean tcp:[::1]:9464?\n" });
});
