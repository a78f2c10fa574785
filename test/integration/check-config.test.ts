import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { runCli } from '../fixtures/cli.ts';
import { socketDir } from '../fixtures/tmp.ts';

/**
 * `--check-config` refuses everything start-up would refuse, with the same
 * message and exit status 2; and `--print-config` shows what would run.
 */

t.test('what start-up refuses, --check-config refuses, in the same words', async (t) => {
  const dir = socketDir(t);
  const config = (name: string, value: unknown): string => {
    const path = join(dir, `${name}.json`);
    writeFileSync(path, JSON.stringify(value));
    return path;
  };
  const long = join(dir, 'd'.repeat(120 - dir.length), 's.sock');
  const cases: [what: string, args: string[], message: string][] = [
    ['a non-loopback address without allowRemote', ['--listen', 'tcp:0.0.0.0:4445'], "endpoint 'default' (tcp:0.0.0.0:4445): not a loopback address, and QMP authenticates no one: give the endpoint tls with client certificates and set allowRemote (allowRemote alone exposes it to anyone who can reach it)"],
    ['a metrics listener on a non-loopback address without allowRemote', ['--metrics', 'tcp:0.0.0.0:0'], 'metrics (tcp:0.0.0.0:0): not a loopback address; set allowRemote to expose it'],
    [
      'an unknown owner',
      ['--config', config('owner', { endpoints: [{ name: 'e', listen: `unix:${dir}/e.sock`, socket: { owner: 'no-such-user-qmpmux' } }] })],
      `endpoint 'e' (unix:${dir}/e.sock): no user named 'no-such-user-qmpmux' in /etc/passwd`,
    ],
    [
      'an unknown group',
      ['--config', config('group', { endpoints: [{ name: 'e', listen: `unix:${dir}/e.sock`, socket: { group: 'no-such-group-qmpmux' } }] })],
      `endpoint 'e' (unix:${dir}/e.sock): no group named 'no-such-group-qmpmux' in /etc/group`,
    ],
    ['a socket directory that does not exist', ['--listen', `unix:${dir}/missing/x.sock`], `endpoint 'default' (unix:${dir}/missing/x.sock): directory ${dir}/missing does not exist`],
    ['a directory where sockets cannot be made', ['--listen', 'unix:/sys/x.sock'], "endpoint 'default' (unix:/sys/x.sock): no permission to create a socket in /sys"],
    ['a socket path over 107 bytes', ['--listen', `unix:${long}`], `endpoint 'default' (unix:${long}): the path is ${Buffer.byteLength(long)} bytes; unix socket paths are at most 107`],
    ['two endpoints at one address', ['--listen', `unix:${dir}/same.sock`, '--listen', `unix:${dir}/same.sock`], `endpoint 'listen1' (unix:${dir}/same.sock): the same address as endpoint 'listen0'`],
    ['an upstream listener in a missing directory', ['--upstream', `listen:unix:${dir}/nowhere/q.sock`], `upstream (listen:unix:${dir}/nowhere/q.sock): directory ${dir}/nowhere does not exist`],
    ['a takeover with no socket to take', ['--upstream', `unix:${dir}/no-qemu.sock`, '--takeover'], `upstream (unix:${dir}/no-qemu.sock, takeover): no socket there`],
    ['a QEMU binary that is not there', ['--', 'qemu-system-nonexistent', '-machine', 'none'], 'qemu-system-nonexistent: not found on PATH'],
  ];
  const upstream = ['--upstream', `unix:${dir}/qemu.sock`];
  for (const [what, args, message] of cases) {
    const withUpstream = args.some((a) => a === '--upstream' || a === '--') ? args : [...upstream, ...args];
    const check = runCli(t, [...withUpstream, '--check-config']);
    const start = runCli(t, withUpstream);
    const [checked, started] = await Promise.all([check.exited, start.exited]);
    t.same(checked, { code: 2, signal: null }, `${what}: --check-config exits 2`);
    t.equal(check.stderr(), `qmp-mux: ${message}\n`, `${what}: --check-config says why`);
    t.same(started, { code: 2, signal: null }, `${what}: start-up exits 2`);
    t.equal(start.stderr(), check.stderr(), `${what}: in the same words`);
    t.equal(start.stdout(), '', `${what}: nothing listened, nothing was announced`);
  }
});

t.test('--print-config: the file, the flags and the defaults, as a file that gives the same', async (t) => {
  const dir = socketDir(t);
  mkdirSync(join(dir, 'run'));
  const file = join(dir, 'vm.json');
  writeFileSync(
    file,
    JSON.stringify({
      upstream: { connect: `unix:${dir}/run/vm.qmp` },
      endpoints: [{ name: 'metrics', listen: `unix:${dir}/run/metrics.sock`, policy: 'read-only' }],
    }),
  );
  const printed = runCli(t, ['--config', file, '--listen', `unix:${dir}/run/debug.sock`, '--print-config']);
  t.same(await printed.exited, { code: 0, signal: null });
  const effective = JSON.parse(printed.stdout()) as { endpoints: { name: string; policy: { deny: string[] } }[]; timeouts: Record<string, number> };
  t.same(
    effective.endpoints.map((e) => e.name),
    ['metrics', 'listen0'],
    '--listen adds an endpoint; the file\'s read-only one stays',
  );
  t.same(effective.endpoints[0]!.policy.deny, ['human-monitor-command'], 'with its policy spelled out');
  t.match(effective.timeouts, { shutdownMs: 5000, closeMs: 2000 }, 'defaults filled in');
  const again = join(dir, 'printed.json');
  writeFileSync(again, printed.stdout());
  const reprinted = runCli(t, ['--config', again, '--print-config']);
  await reprinted.exited;
  t.equal(reprinted.stdout(), printed.stdout(), 'read back, it gives exactly the same');
});
