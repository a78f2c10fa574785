import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { alive, runCli } from '../fixtures/cli.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { TestClient } from '../fixtures/qmp-client.ts';
import { socketDir } from '../fixtures/tmp.ts';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

t.test('--help and --version', async (t) => {
  const help = runCli(t, ['--help']);
  t.same(await help.exited, { code: 0, signal: null });
  t.match(help.stdout(), /--upstream unix:PATH \| tcp:HOST:PORT/);
  t.match(help.stdout(), /--listen/);
  const version = runCli(t, ['--version']);
  t.same(await version.exited, { code: 0, signal: null });
  t.equal(version.stdout(), `qmp-mux ${pkg.version}\n`);
});

t.test('bad arguments: exit status 2 and a message naming the argument', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--bogus'], /unknown argument '--bogus'/],
    [['--listen'], /--listen needs a value/],
    [['--listen', 'udp:1.2.3.4:5'], /--listen: 'udp:1.2.3.4:5': expected unix:PATH or tcp:HOST:PORT/],
    [['--upstream', 'tcp:host:99999'], /port must be 0-65535/],
    [['--upstream', 'unix:/a', '--', 'qemu'], /either --upstream or a QEMU command/],
    [['--log-level', 'loud'], /--log-level: 'loud' is not one of/],
    [['--'], /-- must be followed by a QEMU command/],
  ];
  for (const [args, message] of cases) {
    const run = runCli(t, args);
    t.same(await run.exited, { code: 2, signal: null }, args.join(' '));
    t.match(run.stderr(), message);
    t.match(run.stderr(), /^qmp-mux: [^\n]+\ntry 'qmp-mux --help'\n$/, 'one line, and where to look; not the whole help');
  }
});

t.test('embedded default: launches a throwaway QEMU, serves clients, cleans up on SIGTERM', async (t) => {
  if (!needQemu(t)) return;
  const dir = socketDir(t);
  const run = runCli(t, [], { cwd: dir });
  await run.waitFor(/clients connect at unix:(\S+)/);
  const pid = Number((await run.waitFor(/QEMU started pid=(\d+)/))[1]);
  const sock = join(dir, 'qmp-mux.sock');
  t.ok(run.stdout().includes(`unix:${sock}`), 'prints where clients connect');
  t.ok(run.stdout().includes(`socat - UNIX-CONNECT:${sock})`), 'and how, from any directory');
  const c = await TestClient.connect(sock);
  await c.negotiate();
  t.match(await c.execute('query-status'), /"status": "running"/);
  run.child.kill('SIGTERM');
  t.same(await run.exited, { code: 0, signal: null }, 'exits 0');
  t.notOk(existsSync(sock), 'socket file removed');
  t.notOk(alive(pid), 'QEMU stopped too');
});

t.test('spawn mode: QEMU command after --, and its exit status becomes ours', async (t) => {
  if (!needQemu(t)) return;
  const dir = socketDir(t);
  const sock = join(dir, 'm.sock');
  const run = runCli(t, ['--listen', `unix:${sock}`, '--', 'qemu-system-x86_64', '-machine', 'none', '-nodefaults', '-display', 'none', '-name', 'spawned']);
  await run.waitFor(/clients connect at/);
  const c = await TestClient.connect(sock);
  await c.negotiate();
  t.equal(await c.execute('query-name'), '{"return": {"name": "spawned"}}', 'the arguments reached QEMU');
  c.send('{"execute":"quit"}');
  t.same((await c.rest()).length, 2, 'SHUTDOWN and the return, then EOF');
  t.same(await run.exited, { code: 0, signal: null });

  const failing = runCli(t, ['--listen', `unix:${join(dir, 'f.sock')}`, '--', 'qemu-system-x86_64', '-machine', 'no-such-machine']);
  t.same(await failing.exited, { code: 1, signal: null }, 'QEMU failing to start: its status');
  const missing = runCli(t, ['--listen', `unix:${join(dir, 'g.sock')}`, '--', 'no-such-qemu-binary']);
  t.same(await missing.exited, { code: 2, signal: null }, 'QEMU not found: a configuration error');
  t.equal(missing.stderr(), 'qmp-mux: no-such-qemu-binary: not found on PATH\n', 'the real cause, in one line');
  t.equal(missing.stdout(), '', 'no banner: nothing started');
});

t.test('connect mode over TCP listeners', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t);
  const run = runCli(t, ['--upstream', `unix:${qemu.monitors[0]}`, '--listen', 'tcp:127.0.0.1:0']);
  const port = Number((await run.waitFor(/clients connect at tcp:127\.0\.0\.1:(\d+)/))[1]);
  t.ok(port > 0, 'the real port is printed');
  const c = await TestClient.connect({ type: 'tcp', host: '127.0.0.1', port });
  await c.negotiate();
  t.match(await c.execute('query-status'), /"running": true/);
  run.child.kill('SIGINT');
  t.same(await run.exited, { code: 0, signal: null });
  t.ok(alive(qemu.process.pid!), 'a QEMU qmp-mux did not start is left running');
});

t.test('unix socket files: a stale one is replaced, a live one is an error', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t);
  const dir = socketDir(t);
  const sock = join(dir, 'x.sock');
  const first = runCli(t, ['--upstream', `unix:${qemu.monitors[0]}`, '--listen', `unix:${sock}`]);
  await first.waitFor(/clients connect at/);
  const second = runCli(t, ['--upstream', `unix:${qemu.monitors[0]}`, '--listen', `unix:${sock}`]);
  t.same(await second.exited, { code: 2, signal: null }, 'refuses to steal a live socket');
  t.match(second.stderr(), /another process is listening there/);
  first.child.kill('SIGKILL');
  await first.exited;
  t.ok(existsSync(sock), 'a killed qmp-mux leaves its socket file');
  const third = runCli(t, ['--upstream', `unix:${qemu.monitors[0]}`, '--listen', `unix:${sock}`]);
  await third.waitFor(/clients connect at/);
  const c = await TestClient.connect(sock);
  await c.negotiate();
  t.pass('the stale socket file was replaced');
});

t.test('--check-config: a valid file exits 0; a mistake exits 2 naming the field', async (t) => {
  const dir = socketDir(t);
  // The example as it would be on a machine with its directories: here, under a temporary one.
  const exampleText = readFileSync(new URL('../../config/example.json', import.meta.url), 'utf8');
  mkdirSync(join(dir, 'qmp-mux'));
  const example = join(dir, 'example.json');
  writeFileSync(example, exampleText.replaceAll('/run/', `${dir}/`).replace('"group": "kvm"', `"group": ${process.getgid!()}`));
  const ok = runCli(t, ['--config', example, '--check-config']);
  t.same(await ok.exited, { code: 0, signal: null }, ok.stderr());
  t.match(ok.stdout(), /configuration .*example\.json is valid/);
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ endpoints: [{ name: 'm', listen: 'unix:/x', policy: 'readonly' }] }));
  const run = runCli(t, ['--config', bad, '--check-config']);
  t.same(await run.exited, { code: 2, signal: null });
  t.match(run.stderr(), /bad\.json: config\.endpoints\[0\]\.policy: expected one of 'all', 'read-only', got string "readonly"/);
  const missing = runCli(t, ['--config', join(dir, 'nope.json')]);
  t.same(await missing.exited, { code: 2, signal: null });
  t.match(missing.stderr(), /nope\.json: cannot read/);
  writeFileSync(bad, '{"window": 7,}');
  const notJson = runCli(t, ['--config', bad]);
  t.same(await notJson.exited, { code: 2, signal: null });
  t.match(notJson.stderr(), /bad\.json: not valid JSON/);
});
