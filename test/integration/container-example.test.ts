import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { alive, runCli } from '../fixtures/cli.ts';
import { eventually, waitingFor } from '../fixtures/context.ts';
import { listening } from '../fixtures/proc.ts';
import { QEMU_BINARY, needQemu } from '../fixtures/qemu.ts';
import { TestClient } from '../fixtures/qmp-client.ts';
import { socketDir } from '../fixtures/tmp.ts';

/**
 * config/container without containers (no Docker or Kubernetes here): the
 * commands compose.yaml and pod.yaml give QEMU and qmp-mux, run on this
 * machine with a directory in place of the shared volume. What this does
 * not test: the images, the volume, user ids, the orchestrators.
 */

const file = (name: string): URL => new URL(`../../config/container/${name}`, import.meta.url);
const VOLUME = '/run/qmp';
const CONFIG = '/etc/qmp-mux/qmp-mux.json';

/** The `command: [...]` of each container, by its program. */
function commands(name: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const m of readFileSync(file(name), 'utf8').matchAll(/^\s+command: (\[.*\])$/gm)) {
    const command = JSON.parse(m[1]!) as string[];
    found.set(command[0]!, command);
  }
  return found;
}

t.test('compose.yaml and pod.yaml run the same commands', async (t) => {
  const compose = commands('compose.yaml');
  t.same([...compose.keys()], ['qemu-system-x86_64', 'qmp-mux']);
  t.same([...commands('pod.yaml')], [...compose]);
  t.same(compose.get('qmp-mux'), ['qmp-mux', '--config', CONFIG]);
  t.match(compose.get('qemu-system-x86_64')!.join(' '), `-qmp unix:${VOLUME}/qemu.sock,server=on,wait=off`, 'QEMU\'s monitor in the volume');
  t.match(readFileSync(file('compose.yaml'), 'utf8'), `./qmp-mux.json:${CONFIG}:ro`, 'compose mounts the configuration where the command reads it');
});

t.test('qmp-mux.json is valid as it stands, given its volume', async (t) => {
  // --check-config also checks the machine: the volume, here a temporary directory.
  const dir = socketDir(t);
  const config = join(dir, 'qmp-mux.json');
  writeFileSync(config, readFileSync(file('qmp-mux.json'), 'utf8').replaceAll(`${VOLUME}/`, `${dir}/`));
  const check = runCli(t, ['--config', config, '--check-config']);
  t.same(await check.exited, { code: 0, signal: null }, check.stderr());
});

t.test('the two commands work together through a shared directory', async (t) => {
  if (!needQemu(t)) return;
  const volume = socketDir(t);
  const inVolume = (arg: string): string => arg.replaceAll(VOLUME, volume);
  const compose = commands('compose.yaml');
  const [, ...qemuArgs] = compose.get('qemu-system-x86_64')!;
  const qemu = spawn(QEMU_BINARY, qemuArgs.map(inVolume), { stdio: ['ignore', 'ignore', 'inherit'] });
  const qemuExited = new Promise((resolve) => qemu.once('exit', resolve));
  t.teardown(async () => {
    if (qemu.exitCode === null && qemu.signalCode === null) qemu.kill('SIGKILL');
    await waitingFor('QEMU to exit at teardown', qemuExited);
  });
  await eventually(() => listening(join(volume, 'qemu.sock')) || qemu.exitCode !== null, 'QEMU to listen on its monitor in the shared directory, or exit');
  t.ok(listening(join(volume, 'qemu.sock')), 'QEMU first, its monitor in the shared directory');

  const config = join(volume, 'qmp-mux.json');
  writeFileSync(config, inVolume(readFileSync(file('qmp-mux.json'), 'utf8')));
  const [, ...muxArgs] = compose.get('qmp-mux')!;
  const mux = runCli(t, muxArgs.map((a) => (a === CONFIG ? config : a)));
  await mux.waitFor(/QEMU connected/);
  const client = await TestClient.connect(join(volume, 'qmp-mux.sock'));
  t.match(await client.negotiate(), /^\{"QMP": \{"version": \{"qemu": /, 'a client in the volume gets QEMU\'s greeting');
  t.equal(await client.execute('query-name'), '{"return": {"name": "vm1"}}', 'from the QEMU compose.yaml starts');
  const metrics = await TestClient.connect(join(volume, 'metrics.sock'));
  await metrics.negotiate();
  t.match(await metrics.execute('quit'), /not allowed on endpoint 'metrics'/);

  mux.child.kill('SIGTERM');
  t.same(await mux.exited, { code: 0, signal: null });
  t.ok(alive(qemu.pid!), 'QEMU keeps running without qmp-mux');
  t.notOk(existsSync(join(volume, 'qmp-mux.sock')), 'qmp-mux removed its sockets');
});
