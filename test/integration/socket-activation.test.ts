import { readdirSync, readFileSync, readlinkSync, statSync, existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { alive, runCli, type Running } from '../fixtures/cli.ts';
import { needProgram } from '../fixtures/programs.ts';
import { QEMU_BINARY, needQemu, startQemu } from '../fixtures/qemu.ts';
import { TestClient } from '../fixtures/qmp-client.ts';
import { socketDir } from '../fixtures/tmp.ts';

/** Socket activation for real: systemd-socket-activate holds the sockets and runs the built CLI. */

const ACTIVATE = 'systemd-socket-activate';

/**
 * `systemd-socket-activate` listening on `listen` (names from `fdnames`;
 * none given: "unknown"), running qmp-mux with `args` on the first
 * connection. It passes on only the variables named: tap's coverage ones,
 * the tests' marks (see scope.ts) and TMPDIR are added.
 */
function activate(t: Test, listen: string[], fdnames: string[] | undefined, args: string[]): Running {
  const passed = Object.keys(process.env)
    .filter((k) => /^(NODE_|_TAPJS_|QMT_)/.test(k))
    .concat('TMPDIR')
    .flatMap((k) => ['-E', k]);
  const names = fdnames ? [`--fdname=${fdnames.join(':')}`] : [];
  return runCli(t, args, { wrapper: [ACTIVATE, ...listen.flatMap((l) => ['-l', l]), ...names, ...passed] });
}

/** config/systemd/vm1.json with its sockets in `dir`; QEMU is a `-machine none` (the example's VM needs its disk image). */
function vm1Config(dir: string): { path: string; sockets: Record<string, string> } {
  const text = readFileSync(new URL('../../config/systemd/vm1.json', import.meta.url), 'utf8').replaceAll('/run/qmp-mux/vm1/', `${dir}/`);
  const config = JSON.parse(text) as { upstream: { spawn: string[]; powerdownTimeoutMs: number }; endpoints: { name: string; listen: string }[] };
  config.upstream.spawn = [QEMU_BINARY, '-machine', 'none', '-nodefaults', '-display', 'none'];
  // -machine none has no guest to power down: quit soon.
  config.upstream.powerdownTimeoutMs = 200;
  const path = join(dir, 'vm1.json');
  writeFileSync(path, JSON.stringify(config));
  return { path, sockets: Object.fromEntries(config.endpoints.map((e) => [e.name, e.listen.replace(/^unix:/, '')])) };
}

function comm(pid: number): string {
  return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
}

function environment(pid: number): string[] {
  return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
}

function descriptors(pid: number): string[] {
  return readdirSync(`/proc/${pid}/fd`).map((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      return '';
    }
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

t.test('a client connects before qmp-mux starts and gets QEMU\'s greeting; QEMU inherits neither LISTEN_* nor the socket; the socket file stays', async (t) => {
  if (!needQemu(t) || !needProgram(t, ACTIVATE, 'systemd')) return;
  const dir = socketDir(t);
  const { path, sockets } = vm1Config(dir);
  const sock = sockets.orchestrator!;
  const run = activate(t, [sock], ['orchestrator'], ['--config', path]);
  await run.waitFor(/Listening on \S+ as 3\./);
  const pid = run.child.pid!;
  t.match(comm(pid), /^systemd-socket/, 'only systemd-socket-activate runs');
  t.ok(statSync(sock).isSocket(), 'and holds the socket');

  const client = await TestClient.connect(sock);
  t.match(await client.next(), /^\{"QMP": \{"version": \{"qemu": \{"micro": \d+, "minor": \d+, "major": \d+\}, "package": ".*"\}, "capabilities": \["oob"\]\}\}$/, 'QEMU\'s greeting');
  client.send('{"execute":"qmp_capabilities"}');
  t.equal(await client.next(), '{"return": {}}');
  t.match(await client.execute('query-status'), /"status": "running"/);
  t.equal(comm(pid), 'node', 'qmp-mux runs in its place (LISTEN_PID is its pid)');
  await run.waitFor(/listening endpoint=orchestrator address=unix:\S+ systemdFd=3/);

  const qemu = Number((await run.waitFor(/QEMU started pid=(\d+)/))[1]);
  const env = environment(qemu);
  t.ok(env.some((v) => v.startsWith('PATH=')), 'QEMU\'s environment is readable');
  t.same(env.filter((v) => v.startsWith('LISTEN_')), [], 'QEMU has no LISTEN_* variables');
  const inherited = readlinkSync(`/proc/${pid}/fd/3`);
  t.match(inherited, /^socket:\[\d+\]$/);
  t.notOk(descriptors(qemu).includes(inherited), 'nor the socket qmp-mux got');

  const metrics = await TestClient.connect(sockets.metrics!);
  await metrics.negotiate();
  t.match(await metrics.execute('stop'), /The command stop is not allowed on endpoint 'metrics'/, 'an endpoint qmp-mux binds itself, beside the passed one');

  run.child.kill('SIGTERM');
  t.same(await run.exited, { code: 0, signal: null });
  t.ok(statSync(sock).isSocket(), 'systemd\'s socket file is still there');
  t.notOk(existsSync(sockets.metrics!), 'qmp-mux\'s own socket file is removed');
  t.notOk(alive(qemu), 'QEMU stopped');
});

t.test('a socket named after no endpoint: exit status 2, naming it', async (t) => {
  if (!needProgram(t, ACTIVATE, 'systemd')) return;
  const dir = socketDir(t);
  const { path } = vm1Config(dir);
  for (const [fdnames, name] of [
    [['wrong'], 'wrong'],
    [undefined, 'unknown'],
  ] as const) {
    const sock = join(dir, `${name}.sock`);
    const run = activate(t, [sock], fdnames && [...fdnames], ['--config', path]);
    await run.waitFor(/Listening on/);
    const client = await TestClient.connect(sock);
    t.same(await run.exited, { code: 2, signal: null }, name);
    t.match(run.stderr(), `qmp-mux: the socket systemd passed as fd 3 is named '${name}', and no endpoint has that name (endpoints: orchestrator, metrics); name it after its endpoint`);
    t.notMatch(run.stderr(), /QEMU started/, 'before anything starts');
    client.close();
  }
});

t.test('TCP: the endpoint has the socket\'s own address; a socket of the other family is refused', async (t) => {
  if (!needQemu(t) || !needProgram(t, ACTIVATE, 'systemd')) return;
  const dir = socketDir(t);
  const qemu = await startQemu(t);
  const config = join(dir, 'tcp.json');
  writeFileSync(
    config,
    JSON.stringify({
      upstream: { connect: `unix:${qemu.monitors[0]}` },
      endpoints: [
        { name: 'orchestrator', listen: `unix:${join(dir, 'qmp.sock')}` },
        { name: 'metrics', listen: 'tcp:127.0.0.1:4445', policy: 'read-only' },
      ],
    }),
  );
  const port = await freePort();
  const run = activate(t, [`127.0.0.1:${port}`], ['metrics'], ['--config', config]);
  await run.waitFor(/Listening on/);
  const client = await TestClient.connect({ type: 'tcp', host: '127.0.0.1', port });
  await client.negotiate();
  t.match(await client.execute('query-status'), /"status": "running"/);
  await run.waitFor(new RegExp(`listening endpoint=metrics address=tcp:127\\.0\\.0\\.1:${port} systemdFd=3`));
  t.match(run.stdout(), `clients connect at tcp:127.0.0.1:${port} `, 'where clients really connect');
  run.child.kill('SIGTERM');
  t.same(await run.exited, { code: 0, signal: null });

  const unixForTcp = activate(t, [join(dir, 'm.sock')], ['metrics'], ['--config', config]);
  await unixForTcp.waitFor(/Listening on/);
  const c1 = await TestClient.connect(join(dir, 'm.sock'));
  t.same(await unixForTcp.exited, { code: 1, signal: null });
  t.match(unixForTcp.stderr(), "endpoint 'metrics' is tcp:127.0.0.1:4445, but the socket systemd passed as 'metrics' (fd 3) is a unix socket");
  c1.close();

  const other = await freePort();
  const tcpForUnix = activate(t, [`127.0.0.1:${other}`], ['orchestrator'], ['--config', config]);
  await tcpForUnix.waitFor(/Listening on/);
  const c2 = await TestClient.connect({ type: 'tcp', host: '127.0.0.1', port: other });
  t.same(await tcpForUnix.exited, { code: 1, signal: null });
  t.match(tcpForUnix.stderr(), `endpoint 'orchestrator' is unix:${join(dir, 'qmp.sock')}, but the socket systemd passed as 'orchestrator' (fd 3) is a TCP socket (tcp:127.0.0.1:${other})`);
  c2.close();
});

t.test('LISTEN_PID of another process: a warning, endpoints bound as usual, and QEMU does not inherit the variables', async (t) => {
  if (!needQemu(t)) return;
  const dir = socketDir(t);
  const sock = join(dir, 'm.sock');
  const env = { LISTEN_PID: '1', LISTEN_FDS: '1', LISTEN_FDNAMES: 'default' };
  const run = runCli(t, ['--listen', `unix:${sock}`, '--', QEMU_BINARY, '-machine', 'none', '-nodefaults', '-display', 'none'], { cwd: dir, env });
  await run.waitFor(/clients connect at/);
  t.match(run.stderr(), /WARN {2}the sockets systemd passed are for another process, not used \(run qmp-mux itself, not through npm or a shell\) listenPid=1 pid=\d+/);
  const client = await TestClient.connect(sock);
  await client.negotiate();
  const qemu = Number((await run.waitFor(/QEMU started pid=(\d+)/))[1]);
  const qemuEnv = environment(qemu);
  t.ok(qemuEnv.some((v) => v.startsWith('PATH=')), 'QEMU\'s environment is readable');
  t.same(qemuEnv.filter((v) => v.startsWith('LISTEN_')), [], 'no LISTEN_* variables');
  run.child.kill('SIGTERM');
  t.same(await run.exited, { code: 0, signal: null });
  t.notOk(existsSync(sock), 'its own socket file is removed');
});
