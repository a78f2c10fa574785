import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { MAIN, runCli } from '../fixtures/cli.ts';
import { needProgram, runProgram } from '../fixtures/programs.ts';
import { socketDir } from '../fixtures/tmp.ts';

/** config/systemd: the unit files as systemd reads them, and the example configuration that goes with them. */

const read = (name: string): string => readFileSync(new URL(`../../config/systemd/${name}`, import.meta.url), 'utf8');
const SERVICE = read('qmp-mux@.service');
const SOCKET = read('qmp-mux@.socket');
const INSTALLED = '/usr/local/bin/qmp-mux';

/** The value of `key=` in a unit file, with %i as `instance`. */
function setting(unit: string, key: string, instance = 'vm1'): string | undefined {
  return new RegExp(`^${key}=(.*)$`, 'm').exec(unit)?.[1]?.replaceAll('%i', instance);
}

/** The unit files in a fresh directory, ExecStart running this build (verify wants a program that exists). */
function units(t: Test): string {
  const dir = socketDir(t);
  t.equal(SERVICE.split(INSTALLED).length, 2, `ExecStart runs ${INSTALLED}`);
  writeFileSync(join(dir, 'qmp-mux@.service'), SERVICE.replace(INSTALLED, `${process.execPath} ${MAIN}`));
  writeFileSync(join(dir, 'qmp-mux@.socket'), SOCKET);
  return dir;
}

t.test('systemd-analyze verify accepts both units, without a warning', async (t) => {
  if (!needProgram(t, 'systemd-analyze', 'systemd')) return;
  const dir = units(t);
  const verify = await runProgram('systemd-analyze', ['verify', join(dir, 'qmp-mux@vm1.service'), join(dir, 'qmp-mux@vm1.socket')], { cwd: dir });
  t.equal(verify.stderr, '', 'nothing ignored or missing (verify exits 0 even when it ignores a setting)');
  t.equal(verify.status, 0);
});

t.test('systemd-analyze security: exposure at most 2.0', async (t) => {
  if (!needProgram(t, 'systemd-analyze', 'systemd')) return;
  const dir = units(t);
  const security = await runProgram('systemd-analyze', ['security', '--offline=true', '--threshold=20', '--no-pager', join(dir, 'qmp-mux@vm1.service')], { cwd: dir });
  const exposure = /Overall exposure level for qmp-mux@vm1\.service: (\d+\.\d)/.exec(security.stdout);
  t.ok(exposure, 'an exposure level');
  t.ok(Number(exposure?.[1]) <= 2, `exposure ${exposure?.[1]} (1.7 with systemd 252)`);
  t.equal(security.status, 0, 'under --threshold=20 (2.0)');
});

t.test('the units and vm1.json agree', async (t) => {
  const config = JSON.parse(read('vm1.json')) as { endpoints: { name: string; listen: string }[]; upstream: { spawn?: string[] } };
  const passed = config.endpoints.find((e) => e.name === setting(SOCKET, 'FileDescriptorName'));
  t.ok(passed, 'FileDescriptorName= names an endpoint');
  t.equal(passed?.listen, `unix:${setting(SOCKET, 'ListenStream')}`, 'whose listen address is ListenStream=');
  const runtime = `/run/${setting(SERVICE, 'RuntimeDirectory')}/`;
  for (const e of config.endpoints) t.ok(e.listen.startsWith(`unix:${runtime}`), `${e.name}: in the service's RuntimeDirectory`);
  t.equal(setting(SERVICE, 'ExecStart'), `${INSTALLED} --config /etc/qmp-mux/vm1.json`);
  t.equal(setting(SERVICE, 'KillMode'), 'mixed', 'qmp-mux stops the QEMU it spawns');
  t.ok(config.upstream.spawn, 'vm1.json spawns QEMU');
  // --check-config also checks the machine: the runtime directory, here a temporary one.
  const dir = socketDir(t);
  const vm1 = join(dir, 'vm1.json');
  writeFileSync(vm1, read('vm1.json').replaceAll(runtime, `${dir}/`));
  const check = runCli(t, ['--config', vm1, '--check-config']);
  t.same(await check.exited, { code: 0, signal: null }, `--check-config accepts vm1.json: ${check.stderr()}`);
});
